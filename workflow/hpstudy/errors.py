"""The one exception type users see."""


class HpstudyError(Exception):
    """An error caused by the user's input (config, credentials, archive, images, ...).

    The message is one paragraph that names the input and says how to fix it; the CLI prints
    it without a traceback and exits nonzero. It must never contain a secret.
    """
