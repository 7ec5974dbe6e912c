"""The console's own routes — logging in and out, the language, the home page, static files — and
every page of pages/PAGES, under /console.

Logging in takes two steps on purpose: GET /console/login?token=… only shows a button, and the
POST it sends uses the one-time link up. Chat apps fetch links to draw previews; a GET that used
the link would let the preview robot, not the officer, log in. The POST also comes from our own
page, so the SameSite=Strict cookie it sets is sent on the redirect that follows.
"""

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from bot.channels.console.auth import COOKIE, Console, Forbidden, NotLoggedIn, StaffSession, areas
from bot.channels.console.nav import NAV
from bot.channels.console.pages import PAGES
from bot.channels.console.templating import render
from bot.domain.app import App
from bot.domain.i18n import SUPPORTED
from bot.domain.permissions import Action
from bot.services.console_sessions import end_session, open_session, set_language

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"^[a-z0-9_-]+\.(css|js|svg|png)$")
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,100}$"

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class ConsoleRouter(APIRouter):
    """An APIRouter that also names the exception handlers its pages need on the app."""

    exception_handlers: dict[type[Exception], ExceptionHandler]


def create_router(app: App) -> ConsoleRouter:
    console = Console(app)
    router = ConsoleRouter(prefix=PREFIX, tags=["console"], include_in_schema=False)
    Staff = Annotated[StaffSession, Depends(console.staff)]
    StaffPost = Annotated[StaffSession, Depends(console.staff_post)]

    async def not_logged_in(request: Request, exc: Exception) -> Response:
        return render(request, None, "message.html", 401, kind="login")

    async def forbidden(request: Request, exc: Exception) -> Response:
        return render(request, None, "message.html", 403, kind="forbidden")

    router.exception_handlers = {NotLoggedIn: not_logged_in, Forbidden: forbidden}

    @router.get("/login")
    async def login_page(request: Request, token: Annotated[str, Query(pattern=TOKEN_PATTERN)]) -> Response:
        return render(request, None, "login.html", token=token)

    @router.post("/login")
    async def login(request: Request, token: Annotated[str, Form(pattern=TOKEN_PATTERN)]) -> Response:
        # The login form has no session yet to hold a CSRF token; a POST from another site (which
        # would log the victim in as someone else) is refused by its Origin instead.
        origin = request.headers.get("origin")
        ours = {request.headers.get("host"), urlsplit(app.settings.public_url or "").netloc} - {None, ""}
        if origin is not None and urlsplit(origin).netloc not in ours:  # "null" too (a sandboxed frame)
            raise HTTPException(status_code=403, detail="origin")
        settings = app.settings
        async with app.uow() as uow:
            opened = await open_session(
                uow, token, app.clock.now(), timedelta(hours=settings.console_session_hours)
            )
            await uow.commit()
        if opened is None:
            return render(request, None, "message.html", 401, kind="link")
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(COOKIE, opened.cookie, **console.cookie_args())
        return response

    @router.post("/logout")
    async def logout(request: Request, staff: StaffPost) -> Response:
        async with app.uow() as uow:
            await end_session(uow, staff.cookie, app.clock.now())
            await uow.commit()
        response = render(request, None, "message.html", locale=staff.locale, kind="logged_out")
        response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
        return response

    @router.post("/lang")
    async def language(
        request: Request, staff: StaffPost, locale: Annotated[str, Form()], back: Annotated[str, Form()] = ""
    ) -> Response:
        if locale not in SUPPORTED:
            raise HTTPException(status_code=422)
        async with app.uow() as uow:
            await set_language(uow, staff.cookie, locale)
            await uow.commit()
        # Back to the page it was sent from, and only to a console page.
        target = back if back.startswith(f"{PREFIX}/") and "//" not in back else f"{PREFIX}/"
        return RedirectResponse(target, status_code=303)

    @router.get("/")
    async def home(request: Request, staff: Staff) -> Response:
        for item in NAV:
            if staff.holds(item.action):
                return RedirectResponse(item.path, status_code=303)
        return render(request, staff, "home.html", units=areas(staff, Action.CONSOLE))

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if not _STATIC_NAME.match(name) or not (STATIC / name).is_file():
            raise HTTPException(status_code=404)
        return FileResponse(STATIC / name, headers={"Cache-Control": "max-age=3600"})

    for page in PAGES:
        router.include_router(page(console))
    return router
