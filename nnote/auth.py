"""Sign up, log in, log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from nnote import sessions, throttle
from nnote.forms import ConfirmForm, LoginForm, SignupForm
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


@bp.route("/signup", methods=("GET", "POST"))
def signup() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("notes.index"))
    form = SignupForm()
    if form.validate_on_submit():
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
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            login_user(logged_in(user, sessions.start(user)))
            flash(f"Welcome, {user.first_name}! Your account is ready.", "success")
            return redirect(url_for("notes.index"))
    return render_template("auth/signup.html", form=form)


@bp.route("/login", methods=("GET", "POST"))
def login() -> str | Response:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        if throttle.is_throttled(email, request.remote_addr):
            abort(429)
        user = find_user(email)
        if password_matches(user, form.password.data or ""):
            assert user is not None
            throttle.clear_account(email)
            session.clear()
            login_user(logged_in(user, sessions.start(user)), remember=bool(form.remember.data))
            flash(f"Hello again, {user.first_name}.", "success")
            return redirect(safe_next(request.args.get("next")))
        throttle.record_failure(email, request.remote_addr)
        form.password.errors.append(BAD_LOGIN)
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    sessions.end(current_user.id, current_user.session_id)  # its copied cookies too
    end_browser_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
