"""Data stage: fetch the raw archive, check it, find its layout, decode and preprocess it into
arrays, fingerprint and audit the images. Never imports training (the manifest is the contract)."""
