from aiusage.auth.passwords import verify_password
from aiusage.demo import DEMO_ADMIN, DEMO_AGENT, DEMO_EMPLOYEES, DEMO_ORG, seed_demo
from aiusage.store.repositories import AgentRepository, OrganizationRepository, UserRepository


async def test_demo_seed_is_idempotent_and_refreshes_the_password(db) -> None:
    first = await seed_demo(db)
    second = await seed_demo(db)
    assert first != second
    async with db.read() as conn:
        org = await OrganizationRepository().get(conn, DEMO_ORG)
        admin = await UserRepository().get_by_email(conn, DEMO_ADMIN)
        users = await UserRepository().list(conn, DEMO_ORG)
        agent = await AgentRepository().get(conn, DEMO_ORG, DEMO_AGENT)
    assert (
        org is not None and org.subscription_status == "active" and "ChatGPT" in org.approved_tools
    )
    assert admin is not None and admin.role == "Admin"
    assert verify_password(admin.password_hash, second)
    assert not verify_password(admin.password_hash, first)
    employees = [u for u in users if u.role == "Employee"]
    assert len(employees) == DEMO_EMPLOYEES
    assert employees[0].id == "sim-user-001" and employees[0].email == "ann.lee@demo.local"
    assert agent is not None
