"""The access locks of a payment reference type (seed 2.3.1, 2.5.2): who may read, write or break its references.

A type names up to three locks, each the name of a role (Airflow's roles:
``finance``, ``finance-admin``, … under the FAB auth manager):

* ``accread`` (:attr:`Lock.READ`): reading. Empty: everyone may read.
* ``accwrite`` (:attr:`Lock.WRITE`): making references and changing them
  while they are not sealed, sealing them. Empty: the lock itself restricts
  nothing, so whoever may read may write (see below).
* ``accadmin`` (:attr:`Lock.ADMIN`): "doorbreken", breaking what is sealed —
  unsealing, deleting. Empty: **nobody** may ("Leeg betekent hier: niemand
  heeft toestemming tot doorbreken").

Holding a lock grants what the weaker ones grant: admin gives write and read
("Doorbreektoegang geeft automatisch lees- en schrijftoegang"), write gives
read ("Gebruikers met schrijf- of doorbreektoegang hebben automatisch ook
leestoegang"). A role holds a lock when its name equals the lock's text
(surrounding spaces ignored, case kept).

Our reading where the seed is silent: an empty write lock under a read lock
does not open writing to people who may not read — the seed's "write implies
read" would otherwise make every such read lock void. Writing then needs
read access (the read lock, the write lock if any, or the admin lock).

Which lock an action needs (:func:`needed_lock`): read → read; create and
seal → write; book (a payment booked by hand onto a reference, e.g. from the
control list) → write; unseal → admin (breaking a seal), but only write for
a draft, whose unsealing changes nothing; delete → admin.

:func:`refusal` is the rule itself, pure; :func:`check_references`
(:func:`refusals_by_reference`), :func:`require_reference` and
:func:`require_type` apply it to what is in the database, in the caller's
transaction, before the caller changes anything. A refused change raises
:class:`AccessRefused`, which lists every refusal at once (one refusal
refuses them all). Nothing here knows Airflow: the roles are the caller's
(``include.airflow_roles`` reads them for a DAG run), and :func:`explained`
adds why a run no person triggered holds none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.errors import InnenError
from include.finance.db import hold_ledger
from include.finance.models import PaymentReference, PaymentReferenceType
from include.finance.statuses import ReferenceStatus

ID_BATCH = 5_000


class Lock(Enum):
    """A type's three access locks, by the seed's field names."""

    READ = "accread"
    WRITE = "accwrite"
    ADMIN = "accadmin"

    @property
    def label(self) -> str:
        """``read``, ``write`` or ``admin``."""
        return self.name.lower()


ACTIONS = ("read", "create", "seal", "unseal", "book", "delete")
_VERBS = {"read": "reading", "create": "creating", "seal": "sealing", "unseal": "unsealing", "book": "booking",
          "delete": "deleting"}
_DONE = {"read": "shown", "create": "created", "seal": "sealed", "unseal": "unsealed", "book": "booked",
         "delete": "deleted"}
NEW_REFERENCE = "a new payment reference"  # what a refusal names before the reference exists
NO_PERSON = "no person triggered this run — a schedule, an asset or dag.test — so it holds no roles"


def needed_lock(action: str, *, draft: bool = False) -> Lock:
    """The lock ``action`` needs; ``draft``: the reference is a draft (only unsealing cares).

    >>> needed_lock("unseal").value, needed_lock("unseal", draft=True).value, needed_lock("seal").value
    ('accadmin', 'accwrite', 'accwrite')
    >>> needed_lock("book").value, needed_lock("delete").value
    ('accwrite', 'accadmin')
    """
    if action == "read":
        return Lock.READ
    if action in ("create", "seal", "book"):
        return Lock.WRITE
    if action == "unseal":
        return Lock.WRITE if draft else Lock.ADMIN  # a draft's unsealing changes nothing
    if action == "delete":
        return Lock.ADMIN
    raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")


def _clean(lock: str | None) -> str | None:
    text = (lock or "").strip()
    return text or None


def _named(lock: Lock, name: str) -> str:
    return f"the {lock.label} lock '{name}' ({lock.value})"


def _none_of(roles: set[str]) -> str:
    if not roles:
        return "and you have no roles"
    return f"which none of your roles ({', '.join(sorted(roles))}) is"


def refusal(
    action: str,
    locks_of_type: Sequence[str | None],
    user_roles: Iterable[str],
    type_code: str,
    reference: str,
    *,
    draft: bool = False,
) -> str | None:
    """Why a user with ``user_roles`` may not do ``action`` on ``reference`` of ``type_code``, or None when they may.

    ``locks_of_type`` is the type's ``(accread, accwrite, accadmin)``, each a role name or empty.

    >>> locks = ("fin-lezen", "fin-schrijven", "fin-admin")
    >>> print(refusal("unseal", locks, {"finance"}, "FACTUUR-BIB", "fp:BIB:12"))
    fp:BIB:12 (type FACTUUR-BIB): unsealing needs the admin lock 'fin-admin' (accadmin), which none of your roles (finance) is
    >>> refusal("seal", locks, {"fin-admin"}, "FACTUUR-BIB", "fp:BIB:12") is None
    True
    """
    read, write, admin = (_clean(lock) for lock in locks_of_type)
    roles = {role.strip() for role in user_roles if role and role.strip()}
    needed = needed_lock(action, draft=draft)
    where = f"{reference} (type {type_code}): {_VERBS[action]} needs"

    if admin is not None and admin in roles:
        return None  # admin gives write and read
    if needed is Lock.ADMIN:
        if admin is None:
            return (f"{where} the admin lock ({Lock.ADMIN.value}), which type {type_code} leaves empty: "
                    "nobody may break its references")
        return f"{where} {_named(Lock.ADMIN, admin)}, {_none_of(roles)}"

    if needed is Lock.WRITE and write is not None:
        if write in roles:
            return None
        grants = [_named(Lock.WRITE, write)] + ([_named(Lock.ADMIN, admin)] if admin else [])
        return f"{where} {' or '.join(grants)}, {_none_of(roles)}"

    # Reading; or writing under an empty write lock, which then needs what reading needs.
    if read is None or read in roles or (write is not None and write in roles):
        return None
    grants = [_named(Lock.READ, read)]
    grants += [_named(Lock.WRITE, write)] if write else []
    grants += [_named(Lock.ADMIN, admin)] if admin else []
    why = ""
    if needed is Lock.WRITE:
        why = f"; type {type_code} leaves its write lock empty, so whoever may read may write"
    return f"{where} {' or '.join(grants)}, {_none_of(roles)}{why}"


def refused_message(action: str, refusals: Sequence[str], *, nobody: bool = False) -> str:
    """One message for every refusal of ``action``: nothing was done. ``nobody``: no person triggered the run.

    >>> refused_message("delete", ["fp:BIB:3 (type DOM-BIB): deleting needs …", "fp:BIB:4 (type DOM-BIB): …"])
    'nothing deleted: fp:BIB:3 (type DOM-BIB): deleting needs …; fp:BIB:4 (type DOM-BIB): …'
    >>> print(refused_message("create", ["a new payment reference (type DOM-BIB): …"], nobody=True))
    ... # doctest: +NORMALIZE_WHITESPACE
    nothing created (no person triggered this run — a schedule, an asset or dag.test — so it holds no roles):
    a new payment reference (type DOM-BIB): …
    """
    needed_lock(action)
    why = f" ({NO_PERSON})" if nobody else ""
    return f"nothing {_DONE[action]}{why}: " + "; ".join(refusals)


class AccessRefused(InnenError):
    """``action`` refused by the access locks: ``refusals`` lists every reference refused; nothing was changed."""

    def __init__(self, action: str, refusals: Sequence[str]) -> None:
        self.action = action
        self.refusals = list(refusals)
        super().__init__(refused_message(action, self.refusals))


def explained(error: Exception, person: str | None) -> str:
    """``error``'s message for whoever reads the run's log: a lock refusal of a run without a person says why it
    held no roles (the domain code that raised it does not know who triggered the run).

    >>> explained(AccessRefused("book", ["fp:BIB:3 (type DOM-BIB): booking needs …"]), "fiona")
    'nothing booked: fp:BIB:3 (type DOM-BIB): booking needs …'
    >>> explained(AccessRefused("book", ["…"]), None).startswith("nothing booked (no person triggered this run")
    True
    >>> explained(InnenError("there is no control-list item 9"), None)
    'there is no control-list item 9'
    """
    if isinstance(error, AccessRefused) and person is None:
        return refused_message(error.action, error.refusals, nobody=True)
    return str(error)


def reference_ids(session: Session, lois: Iterable[str]) -> list[int]:
    """The ids of the references ``lois`` (``fp:SYS:n``), in the order given; an unknown one is refused, naming all."""
    wanted = list(dict.fromkeys(loi.strip() for loi in lois if loi and loi.strip()))
    if not wanted:
        raise InnenError("name at least one payment reference (fp:SYS:n)")
    found: dict[str, int] = {}
    for start in range(0, len(wanted), ID_BATCH):
        batch = wanted[start : start + ID_BATCH]
        found.update((loi, ref_id) for loi, ref_id in session.execute(
            select(PaymentReference.loi, PaymentReference.id).where(PaymentReference.loi.in_(batch))
        ))
    missing = [loi for loi in wanted if loi not in found]
    if missing:
        raise InnenError(f"payment reference {', '.join(missing)} does not exist")
    return [found[loi] for loi in wanted]


def refusals_by_reference(
    session: Session, reference_ids: Iterable[int], action: str, user_roles: Iterable[str]
) -> dict[int, str]:
    """Every refusal (:func:`refusal`) of ``action`` on the references ``reference_ids``, by id; {} = all allowed.

    The references' types are read here. For any action but reading, the references are locked for the
    caller's transaction (``FOR UPDATE`` on PostgreSQL; SQLite's writers queue anyway), so the status the
    check saw — a draft needs less to unseal than a sealed reference — is the status the change finds.
    A reference id that does not exist is refused too.
    """
    needed_lock(action)  # an unknown action is refused before anything is read
    if action != "read":
        hold_ledger(session)  # the ledger before any reference's row lock, as every money change takes them
    ids = sorted(set(reference_ids))
    roles = set(user_roles)
    refusals: dict[int, str] = {}
    seen: set[int] = set()
    for start in range(0, len(ids), ID_BATCH):
        query = (
            select(PaymentReference.id, PaymentReference.loi, PaymentReference.status, PaymentReferenceType.code,
                   PaymentReferenceType.access_read, PaymentReferenceType.access_write,
                   PaymentReferenceType.access_admin)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReference.id.in_(ids[start : start + ID_BATCH]))
            .order_by(PaymentReference.id)
        )
        if action != "read":
            query = query.with_for_update(of=PaymentReference)
        for ref_id, loi, status, type_code, read, write, admin in session.execute(query):
            seen.add(ref_id)
            why = refusal(action, (read, write, admin), roles, type_code, loi, draft=status == ReferenceStatus.DRAFT)
            if why is not None:
                refusals[ref_id] = why
    refusals.update((ref_id, f"payment reference id {ref_id} does not exist") for ref_id in ids if ref_id not in seen)
    return refusals


def check_references(
    session: Session, reference_ids: Iterable[int], action: str, user_roles: Iterable[str]
) -> list[str]:
    """Every refusal (:func:`refusal`) of ``action`` on the references ``reference_ids``, by id; [] = all allowed.

    As :func:`refusals_by_reference` (which locks the references for any action but reading), as a list.
    """
    return list(refusals_by_reference(session, reference_ids, action, user_roles).values())


def require_reference(session: Session, reference: PaymentReference, action: str, user_roles: Iterable[str]) -> None:
    """Raise :class:`AccessRefused` when ``user_roles`` may not do ``action`` on ``reference``, already read.

    Unlike :func:`check_references` the reference is not locked here: a caller that must serialise on
    something else first (the control list claims its item before it locks the reference it books on)
    keeps its own order; the lock ``action`` needs may not depend on the reference's status then.
    """
    type_ = session.get(PaymentReferenceType, reference.type_id)
    if type_ is None:  # the foreign key forbids it; a message rather than an AttributeError all the same
        raise InnenError(f"{reference.loi}: its payment reference type ({reference.type_id}) does not exist")
    why = refusal(action, (type_.access_read, type_.access_write, type_.access_admin), user_roles, type_.code,
                  reference.loi, draft=reference.status == ReferenceStatus.DRAFT)
    if why is not None:
        raise AccessRefused(action, [why])


def require_type(session: Session, type_code: str, action: str, user_roles: Iterable[str]) -> None:
    """Raise :class:`AccessRefused` when ``user_roles`` may not do ``action`` (``create``) on a new reference of
    type ``type_code``; an unknown type is refused (:class:`InnenError`) with the message making a reference gives."""
    code = (type_code or "").strip()
    type_ = session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.code == code)).one_or_none()
    if type_ is None:
        raise InnenError(f"payment reference type {type_code!r} does not exist")
    why = refusal(action, (type_.access_read, type_.access_write, type_.access_admin), user_roles, type_.code,
                  NEW_REFERENCE)
    if why is not None:
        raise AccessRefused(action, [why])
