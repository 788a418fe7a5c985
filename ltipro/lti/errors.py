"""Why a launch was refused, in words a user and an admin can act on."""

from __future__ import annotations


class LaunchError(Exception):
    """A launch the tool refuses.

    ``code`` is a short stable reason recorded in the launch log (``unknown_deployment``,
    ``bad_signature``, ...); ``message`` is shown to the user and the admin; ``status`` is
    the HTTP status of the error page (a 4xx: the LMS or the browser sent something
    wrong; 503 only when a shared store is down). ``hint`` says what the LMS admin should
    change, where known; ``lms`` names the LMS once the launch's plugin is known.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        hint: str = "",
        relaunch: dict[str, str] | None = None,
        lms: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.hint = hint
        # Login parameters to start the launch again in a new window, where that helps.
        self.relaunch = relaunch
        self.lms = lms

    def __repr__(self) -> str:
        return f"LaunchError({self.code!r}, {self.message!r})"
