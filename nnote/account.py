"""The account page: the devices logged in (end any or all others), change password, delete
the account. Both password checks are throttled like logging in, and count with it: a stolen
session is no faster way to guess the password."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import delete
from werkzeug.wrappers import Response

from nnote import sessions
from nnote.auth import end_browser_session, password_guess_right
from nnote.forms import ChangePasswordForm, DeleteAccountForm, require_confirmation
from nnote.listing import time_html
from nnote.models import Note, User, db, new_session_token
from nnote.passwords import hash_password

bp = Blueprint("account", __name__, url_prefix="/account")


def _render(
    password_form: ChangePasswordForm | None = None, delete_form: DeleteAccountForm | None = None
) -> str:
    return render_template(
        "account/index.html",
        password_form=password_form or ChangePasswordForm(formdata=None),
        delete_form=delete_form or DeleteAccountForm(formdata=None),
        sessions=sessions.listed(current_user.id),
        this_session=current_user.session_id,
        device=sessions.device,
        time=time_html,
    )


def _account() -> User:
    user = db.session.get(User, current_user.id)
    if user is None:  # deleted between the session check and now
        abort(404)
    return user


@bp.get("/")
@login_required
def index() -> str:
    return _render()


@bp.post("/sessions/<int:session_id>/end")
@login_required
def end_session(session_id: int) -> Response:
    require_confirmation()
    if not sessions.end(current_user.id, session_id):
        abort(404)  # not one of this user's sessions (or ended already)
    if session_id == current_user.session_id:
        end_browser_session()
        flash("You are logged out.", "info")
        return redirect(url_for("auth.login"))
    flash("That session is ended: the device is logged out.", "success")
    return redirect(url_for("account.index"))


@bp.post("/sessions/end-others")
@login_required
def end_other_sessions() -> Response:
    require_confirmation()
    ended = sessions.end_all(current_user.id, keep=current_user.session_id)
    flash(f"Logged out everywhere else ({ended} session(s) ended).", "success")
    return redirect(url_for("account.index"))


@bp.post("/password")
@login_required
def change_password() -> str | Response:
    form = ChangePasswordForm()
    user = _account()
    if form.validate_on_submit():
        if password_guess_right(user.email, user, form.current.data or ""):
            user.password_hash = hash_password(form.password.data or "")
            # A new token ends this and every other session, remember-me cookies included.
            user.session_token = new_session_token()
            db.session.commit()
            sessions.end_all(user.id)
            end_browser_session()
            flash("Password changed. Log in again with your new password.", "success")
            return redirect(url_for("auth.login"))
        form.current.errors.append("That is not your current password.")
    return _render(password_form=form)


@bp.post("/delete")
@login_required
def delete_account() -> str | Response:
    form = DeleteAccountForm()
    user = _account()
    if form.validate_on_submit():
        if password_guess_right(user.email, user, form.account_password.data or ""):
            db.session.execute(delete(Note).where(Note.user_id == user.id))
            db.session.delete(user)
            db.session.commit()
            end_browser_session()
            flash("Your account and all its notes are deleted.", "info")
            return redirect(url_for("auth.signup"))
        form.account_password.errors.append("That is not your password.")
    return _render(delete_form=form)
