"""Factories the tests share: synthetic runs (runfactory), processed data and run specs for
training (trainfactory), zips and folders of generated images (zipfactory)."""
