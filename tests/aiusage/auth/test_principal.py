import pytest

from aiusage.auth.principal import UserPrincipal, normalise_roles


def test_a_single_role_string_becomes_a_one_element_set():
    assert normalise_roles("Admin") == frozenset({"Admin"})


def test_a_role_list_is_deduplicated_and_trimmed():
    assert normalise_roles(["Admin", " Manager ", "Admin"]) == frozenset({"Admin", "Manager"})


@pytest.mark.parametrize("value", [None, 3, [], [""], ["Admin", 1], "  ", {"Admin": 1}])
def test_malformed_role_claims_are_refused(value):
    with pytest.raises(ValueError):
        normalise_roles(value)


def test_from_claims_reads_sub_org_roles_and_exp():
    p = UserPrincipal.from_claims({"sub": "u1", "org": "o1", "role": ["Manager"], "exp": 10})
    assert (p.sub, p.org, p.roles, p.exp) == ("u1", "o1", frozenset({"Manager"}), 10.0)
    assert p.claims["sub"] == "u1"


@pytest.mark.parametrize(
    "claims",
    [
        {"org": "o", "role": "Admin"},
        {"sub": "", "org": "o", "role": "Admin"},
        {"sub": "u", "role": "Admin"},
        {"sub": "u", "org": 5, "role": "Admin"},
        {"sub": "u", "org": "o"},
    ],
)
def test_from_claims_requires_sub_org_and_role(claims):
    with pytest.raises(ValueError):
        UserPrincipal.from_claims(claims)


def test_custom_claim_names_are_honoured():
    p = UserPrincipal.from_claims(
        {"sub": "u", "tid": "o", "roles": "Admin"}, org_claim="tid", role_claim="roles"
    )
    assert p.org == "o" and p.roles == {"Admin"}


def test_only_super_admin_may_access_other_organizations():
    admin = UserPrincipal("u", "o1", frozenset({"Admin"}))
    root = UserPrincipal("r", "o1", frozenset({"SuperAdmin"}))
    assert admin.can_access_org("o1") and not admin.can_access_org("o2")
    assert root.can_access_org("o2") and root.is_super_admin and not admin.is_super_admin
