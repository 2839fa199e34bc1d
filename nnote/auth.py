"""Sign up, log in, log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from nnote import pages, sessions, throttle
from nnote.forms import LoginForm, SignupForm, require_confirmation
from nnote.models import User, db
from nnote.passwords import hash_password, password_matches
from nnote.security import logged_in

bp = Blueprint("auth", __name__, url_prefix="/auth")

BAD_LOGIN = "Wrong email or password."


def safe_next(target: str | None) -> str:
    """Return `target` if it stays on this site, else the home page (no open redirect)."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return url_for("notes.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("notes.index")
    return target


def end_browser_session() -> None:
    """Log this browser out: its session cookie emptied, its remember-me cookie deleted. In
    this order: logout_user() leaves Flask-Login a note in the session to delete the
    remember-me cookie, which clearing the session afterwards would wipe."""
    session.clear()
    logout_user()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email))


def password_guess_right(email: str, user: User | None, password: str) -> bool:
    """Check a password as a guess at `email`'s account, throttled (see `nnote.throttle`):
    a client that must wait gets its 429 before the password is checked; a wrong password
    is counted, a right one clears this client's count for the account."""
    device = request.cookies.get(throttle.DEVICE_COOKIE)
    throttle.check_password_guess(email, request.remote_addr, device)
    if password_matches(user, password):
        throttle.clear_password_failures(email, request.remote_addr)
        return True
    throttle.record_password_failure(email, request.remote_addr)
    return False


def remember_browser(response: Response, email: str) -> Response:
    """Mark this browser as one that logged in to `email`'s account: a distributed attack on
    the account then never slows it down."""
    value = throttle.device_cookie_after_login(email, request.cookies.get(throttle.DEVICE_COOKIE))
    response.set_cookie(
        throttle.DEVICE_COOKIE,
        value,
        max_age=throttle.DEVICE_COOKIE_SECONDS,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response


def new_account(form: SignupForm) -> User | None:
    """The account the form describes, or None when its email has one already."""
    user = User(
        email=form.email.data,
        first_name=form.first_name.data,
        password_hash=hash_password(form.password.data or ""),
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return user


@bp.route("/signup", methods=("GET", "POST"))
def signup() -> str | Response:
    if (page := pages.cached("auth/signup.html")) is not None:
        return page
    if current_user.is_authenticated:
        return redirect(url_for("notes.index"))
    form = SignupForm()
    if form.validate_on_submit():
        # The answer tells whether the email has an account, so every try counts.
        throttle.admit_signup(request.remote_addr)
        user = new_account(form)
        if user is None:
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            login_user(logged_in(user, sessions.start(user)))
            flash(f"Welcome, {user.first_name}! Your account is ready.", "success")
            return remember_browser(redirect(url_for("notes.index")), user.email)
    return pages.render("auth/signup.html", form)


@bp.route("/login", methods=("GET", "POST"))
def login() -> str | Response:
    if (page := pages.cached("auth/login.html")) is not None:
        return page
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        user = find_user(email)
        if password_guess_right(email, user, form.password.data or ""):
            assert user is not None
            session.clear()
            login_user(logged_in(user, sessions.start(user)), remember=bool(form.remember.data))
            flash(f"Hello again, {user.first_name}.", "success")
            return remember_browser(redirect(safe_next(request.args.get("next"))), email)
        form.password.errors.append(BAD_LOGIN)
    return pages.render("auth/login.html", form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    require_confirmation()
    sessions.end(current_user.id, current_user.session_id)  # its copied cookies too
    end_browser_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
