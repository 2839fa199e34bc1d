"""The account page: change password, delete the account."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, logout_user
from sqlalchemy import delete
from werkzeug.wrappers import Response

from nnote.forms import ChangePasswordForm, DeleteAccountForm
from nnote.models import Note, User, db, new_session_token
from nnote.passwords import hash_password, password_matches

bp = Blueprint("account", __name__, url_prefix="/account")


def _end_session() -> None:
    logout_user()
    session.clear()


def _render(
    password_form: ChangePasswordForm | None = None, delete_form: DeleteAccountForm | None = None
) -> str:
    return render_template(
        "account/index.html",
        password_form=password_form or ChangePasswordForm(formdata=None),
        delete_form=delete_form or DeleteAccountForm(formdata=None),
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


@bp.post("/password")
@login_required
def change_password() -> str | Response:
    form = ChangePasswordForm()
    user = _account()
    if form.validate_on_submit():
        if password_matches(user, form.current.data or ""):
            user.password_hash = hash_password(form.password.data or "")
            # A new token ends this and every other session, remember-me cookies included.
            user.session_token = new_session_token()
            db.session.commit()
            _end_session()
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
        if password_matches(user, form.account_password.data or ""):
            db.session.execute(delete(Note).where(Note.user_id == user.id))
            db.session.delete(user)
            db.session.commit()
            _end_session()
            flash("Your account and all its notes are deleted.", "info")
            return redirect(url_for("auth.signup"))
        form.account_password.errors.append("That is not your password.")
    return _render(delete_form=form)
