"""Access locks of a payment reference type (seed 2.3.1, 2.5.2): accread, accwrite, accadmin.

The seed's rules, as the table below spells them out by hand:
  * an empty read lock: everyone may read; an empty admin lock: nobody may break ("doorbreken");
  * admin access gives write and read access; write access gives read access;
  * an empty write lock restricts nothing of its own: whoever may read may write (our reading: it does not
    let people who may not read write, or the read lock would mean nothing).
"""

from __future__ import annotations

import itertools

import pytest

from include.errors import InnenError
from include.finance.access import AccessRefused, Lock, explained, needed_lock, refusal, refused_message

R, W, A = "fin-lezen", "fin-schrijven", "fin-admin"
TYPE, REF = "FACTUUR-BIB", "fp:BIB:12"


def _locks(pattern: str) -> tuple[str | None, str | None, str | None]:
    """``"R-A"`` → read lock set, write lock empty, admin lock set."""
    return (R if pattern[0] == "R" else None, W if pattern[1] == "W" else None, A if pattern[2] == "A" else None)


def _roles(held: str) -> set[str]:
    """``"rw"`` → the roles the read and the write lock name; ``"x"`` → a role no lock names."""
    return {name for flag, name in (("r", R), ("w", W), ("a", A), ("x", "viewer")) if flag in held}


# locks, roles held, may read, may write, may break (unseal a sealed reference, delete)
TABLE = [
    ("---", "", True, True, False),  # no locks: reading and writing open, breaking closed to all
    ("---", "r", True, True, False),
    ("---", "w", True, True, False),
    ("---", "a", True, True, False),  # a role named like an admin lock does not open an empty one
    ("R--", "", False, False, False),
    ("R--", "r", True, True, False),  # the write lock is empty: who may read may write
    ("R--", "w", False, False, False),
    ("R--", "a", False, False, False),
    ("-W-", "", True, False, False),
    ("-W-", "r", True, False, False),
    ("-W-", "w", True, True, False),
    ("-W-", "a", True, False, False),
    ("--A", "", True, True, False),
    ("--A", "r", True, True, False),
    ("--A", "w", True, True, False),
    ("--A", "a", True, True, True),
    ("RW-", "", False, False, False),
    ("RW-", "r", True, False, False),
    ("RW-", "w", True, True, False),  # write gives read
    ("RW-", "a", False, False, False),
    ("R-A", "", False, False, False),
    ("R-A", "r", True, True, False),
    ("R-A", "w", False, False, False),
    ("R-A", "a", True, True, True),  # admin gives read and write
    ("-WA", "", True, False, False),
    ("-WA", "r", True, False, False),
    ("-WA", "w", True, True, False),
    ("-WA", "a", True, True, True),
    ("RWA", "", False, False, False),
    ("RWA", "x", False, False, False),
    ("RWA", "r", True, False, False),
    ("RWA", "w", True, True, False),
    ("RWA", "a", True, True, True),
    ("RWA", "rw", True, True, False),
    ("RWA", "rwa", True, True, True),
]

# action, the reference is a draft, the lock it needs
ACTIONS = [
    ("read", False, Lock.READ),
    ("create", False, Lock.WRITE),
    ("seal", False, Lock.WRITE),
    ("seal", True, Lock.WRITE),
    ("unseal", False, Lock.ADMIN),  # breaking a seal
    ("unseal", True, Lock.WRITE),  # a draft's unsealing changes nothing
    ("book", False, Lock.WRITE),  # a payment booked by hand onto the reference (control list)
    ("book", True, Lock.WRITE),
    ("delete", False, Lock.ADMIN),
    ("delete", True, Lock.ADMIN),
]


def test_the_table_has_every_lock_pattern_with_every_single_role() -> None:
    patterns = {"".join(p) for p in itertools.product("R-", "W-", "A-")}
    assert {(locks, held) for locks, held, *_ in TABLE} >= set(itertools.product(patterns, ["", "r", "w", "a"]))


@pytest.mark.parametrize(("action", "draft", "lock"), ACTIONS)
def test_needed_lock(action: str, draft: bool, lock: Lock) -> None:
    assert needed_lock(action, draft=draft) is lock


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action 'edit'"):
        needed_lock("edit")
    with pytest.raises(ValueError):
        refusal("edit", _locks("---"), set(), TYPE, REF)


@pytest.mark.parametrize(("locks", "held", "may_read", "may_write", "may_break"), TABLE,
                         ids=[f"{row[0]}-{row[1] or 'none'}" for row in TABLE])
@pytest.mark.parametrize(("action", "draft", "lock"), ACTIONS,
                         ids=[f"{a}{'-draft' if d else ''}" for a, d, _ in ACTIONS])
def test_the_seeds_rules(action: str, draft: bool, lock: Lock, locks: str, held: str, may_read: bool, may_write: bool,
                         may_break: bool) -> None:
    allowed = {Lock.READ: may_read, Lock.WRITE: may_write, Lock.ADMIN: may_break}[lock]
    why = refusal(action, _locks(locks), _roles(held), TYPE, REF, draft=draft)
    assert (why is None) == allowed, why
    if why is not None:
        assert why.startswith(f"{REF} (type {TYPE}): ")


# -- the messages -------------------------------------------------------------------------------------


def test_the_message_names_the_lock_its_role_the_reference_the_type_and_your_roles() -> None:
    assert refusal("unseal", _locks("RWA"), {"finance"}, TYPE, REF) == (
        "fp:BIB:12 (type FACTUUR-BIB): unsealing needs the admin lock 'fin-admin' (accadmin), "
        "which none of your roles (finance) is"
    )
    assert refusal("seal", _locks("RWA"), {"viewer", R}, TYPE, REF) == (
        "fp:BIB:12 (type FACTUUR-BIB): sealing needs the write lock 'fin-schrijven' (accwrite) or the admin lock "
        "'fin-admin' (accadmin), which none of your roles (fin-lezen, viewer) is"
    )
    assert refusal("read", _locks("RWA"), set(), TYPE, REF) == (
        "fp:BIB:12 (type FACTUUR-BIB): reading needs the read lock 'fin-lezen' (accread) or the write lock "
        "'fin-schrijven' (accwrite) or the admin lock 'fin-admin' (accadmin), and you have no roles"
    )
    assert refusal("delete", _locks("RW-"), {A}, TYPE, REF) == (
        "fp:BIB:12 (type FACTUUR-BIB): deleting needs the admin lock (accadmin), which type FACTUUR-BIB leaves "
        "empty: nobody may break its references"
    )
    assert refusal("create", _locks("R--"), {"finance"}, TYPE, REF) == (
        "fp:BIB:12 (type FACTUUR-BIB): creating needs the read lock 'fin-lezen' (accread), which none of your roles "
        "(finance) is; type FACTUUR-BIB leaves its write lock empty, so whoever may read may write"
    )
    assert refusal("unseal", _locks("RW-"), {W}, TYPE, REF, draft=True) is None


def test_empty_locks_are_blank_text_too_and_a_role_matches_a_lock_exactly() -> None:
    blank = (" ", "", "  ")
    assert refusal("seal", blank, set(), TYPE, REF) is None
    assert "leaves empty" in refusal("unseal", blank, {"admin"}, TYPE, REF)  # type: ignore[operator]
    padded = (None, " finance ", " finance-admin ")
    assert refusal("unseal", padded, {"finance-admin"}, TYPE, REF) is None
    assert refusal("seal", padded, {" finance "}, TYPE, REF) is None
    case = refusal("unseal", padded, {"Finance-Admin"}, TYPE, REF)
    assert case is not None and "'finance-admin' (accadmin)" in case
    assert refusal("unseal", padded, {"finance-admin-2", "finance"}, TYPE, REF) is not None


def test_booking_and_creating_name_what_they_need() -> None:
    demo = (None, "finance", "finance-admin")  # the demo institution's types
    assert refusal("book", demo, {"operator"}, "DOM-BIB", "fp:BIB:3") == (
        "fp:BIB:3 (type DOM-BIB): booking needs the write lock 'finance' (accwrite) or the admin lock 'finance-admin' "
        "(accadmin), which none of your roles (operator) is"
    )
    assert refusal("create", demo, set(), "DOM-BIB", "a new payment reference") == (
        "a new payment reference (type DOM-BIB): creating needs the write lock 'finance' (accwrite) or the admin lock "
        "'finance-admin' (accadmin), and you have no roles"
    )
    assert refusal("delete", demo, {"finance"}, "DOM-BIB", "fp:BIB:3") == (
        "fp:BIB:3 (type DOM-BIB): deleting needs the admin lock 'finance-admin' (accadmin), which none of your roles "
        "(finance) is"
    )
    assert refusal("book", demo, {"finance"}, "DOM-BIB", "fp:BIB:3") is None
    assert refusal("delete", demo, {"finance-admin"}, "DOM-BIB", "fp:BIB:3") is None


# -- one message for every refusal, and why a run without a person holds no roles ---------------------------------

NOBODY = " (no person triggered this run — a schedule, an asset or dag.test — so it holds no roles)"


@pytest.mark.parametrize(("action", "done"), [("create", "created"), ("seal", "sealed"), ("unseal", "unsealed"),
                                              ("book", "booked"), ("delete", "deleted")])
def test_a_refusal_says_nothing_was_done_and_lists_every_reference(action: str, done: str) -> None:
    assert refused_message(action, ["fp:BIB:1 (…)", "fp:BIB:2 (…)"]) == f"nothing {done}: fp:BIB:1 (…); fp:BIB:2 (…)"
    assert refused_message(action, ["fp:BIB:1 (…)"], nobody=True) == f"nothing {done}{NOBODY}: fp:BIB:1 (…)"
    refused = AccessRefused(action, ["fp:BIB:1 (…)"])
    assert isinstance(refused, InnenError) and (refused.action, refused.refusals) == (action, ["fp:BIB:1 (…)"])
    assert str(refused) == f"nothing {done}: fp:BIB:1 (…)"
    assert explained(refused, "fiona") == f"nothing {done}: fp:BIB:1 (…)"
    assert explained(refused, None) == f"nothing {done}{NOBODY}: fp:BIB:1 (…)"


def test_only_a_lock_refusal_is_explained_by_who_triggered_the_run() -> None:
    other = InnenError("control-list item 4 was already resolved")
    assert explained(other, None) == explained(other, "fiona") == "control-list item 4 was already resolved"
    with pytest.raises(ValueError, match="unknown action"):
        refused_message("edit", ["fp:BIB:1"])
