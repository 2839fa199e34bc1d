"""Password hashing with Werkzeug's current default, and checks that do not leak accounts."""

from __future__ import annotations

import secrets
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from nnote.models import User


def hash_password(password: str) -> str:
    return generate_password_hash(password)


@cache
def _decoy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def password_matches(user: User | None, password: str) -> bool:
    """Check a password; with no user, spend the same hashing time and fail.

    An unknown email and a wrong password must be indistinguishable, in answer and in time.
    """
    if user is None:
        check_password_hash(_decoy_hash(), password)
        return False
    return check_password_hash(user.password_hash, password)
