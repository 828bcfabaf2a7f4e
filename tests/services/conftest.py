from tests.api.conftest import keypairs

__all__ = ["keypairs"]
