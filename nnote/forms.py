"""The app's forms. Every one carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

from flask import abort
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Regexp

PASSWORD_MIN = 8
PASSWORD_MAX = 128
EMAIL_PATTERN = r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$"


def _normalise_email(value: str | None) -> str:
    return (value or "").strip().lower()


def _strip(value: str | None) -> str:
    return (value or "").strip()


class EmailField(StringField):
    def __init__(self, label: str = "Email", **kwargs: object) -> None:
        super().__init__(
            label,
            filters=[_normalise_email],
            validators=[
                DataRequired("Enter your email address."),
                Length(max=254, message="That email address is too long."),
                Regexp(EMAIL_PATTERN, message="Enter a valid email address, like ann@example.com."),
            ],
            **kwargs,
        )


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            InputRequired("Choose a password."),
            Length(
                min=PASSWORD_MIN,
                max=PASSWORD_MAX,
                message=f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
            ),
        ],
    )


def _repeat(field: str) -> PasswordField:
    return PasswordField(
        "Repeat the password",
        validators=[
            InputRequired("Type the password again."),
            EqualTo(field, message="The two passwords differ."),
        ],
    )


class SignupForm(FlaskForm):
    email = EmailField()
    first_name = StringField(
        "First name",
        filters=[_strip],
        validators=[
            DataRequired("Enter your first name."),
            Length(max=80, message="Use at most 80 characters."),
        ],
    )
    password = _new_password("Password")
    confirm = _repeat("password")


class LoginForm(FlaskForm):
    email = EmailField()
    password = PasswordField(
        "Password",
        validators=[InputRequired("Enter your password."), Length(max=PASSWORD_MAX)],
    )
    remember = BooleanField("Remember me")


class NoteForm(FlaskForm):
    body = TextAreaField(
        "Note",
        filters=[_strip],
        validators=[DataRequired("Write something first.")],
    )

    def limit_length(self, maximum: int) -> None:
        self.body.validators = [
            *self.body.validators,
            Length(max=maximum, message=f"A note holds at most {maximum:,} characters."),
        ]


class ConfirmForm(FlaskForm):
    """A form with nothing but the CSRF token, for confirmed POST actions."""


def require_confirmation() -> None:
    """A confirmed POST action carries the page's CSRF token; without it, 400."""
    if not ConfirmForm().validate_on_submit():
        abort(400)


class ChangePasswordForm(FlaskForm):
    current = PasswordField(
        "Current password",
        validators=[InputRequired("Enter your current password."), Length(max=PASSWORD_MAX)],
    )
    password = _new_password("New password")
    confirm = _repeat("password")


class DeleteAccountForm(FlaskForm):
    # Not "password": the change-password form on the same page has a field of that id.
    account_password = PasswordField(
        "Your password",
        validators=[InputRequired("Enter your password to confirm."), Length(max=PASSWORD_MAX)],
    )
