import pytest

from aiusage.auth.issuer import BuiltinIssuer
from tests.aiusage.api.p2b_support import platform  # noqa: F401  (fixture: REST platform per backend)
from tests.security.kit import HubWorld


@pytest.fixture(scope="session")
def issuer(tmp_path_factory):
    return BuiltinIssuer.load_or_create(tmp_path_factory.mktemp("issuer"))


@pytest.fixture
def world(issuer):
    w = HubWorld(BuiltinIssuer(issuer._private))
    w.directory.org("acme", "active")
    w.directory.org("globex", "trialing")
    w.directory.org("initech", "canceled")
    return w
