"""The actor our daemon runs in the interop tests (loaded by `actr run` from a config)."""

from __future__ import annotations

import asyncio

from actr import Context, rpc
from actr.errors import NotFound
from actr.identity import id_text
from examples.echo import Echo
from examples.echo_pb2 import SayReply, SayRequest

NOTE_ROUTE = "interop.v1.Notes.Note"
READ_ROUTE = "interop.v1.Notes.Read"


class RecordingEcho(Echo):
    """The echo actor (same type, same ``echo.v1.Echo.Say``) that also records the tells
    it handles, so a test can see that a tell from another runtime reached the handler:
    ``Note`` (meant as a tell) records its text with the caller's id, and ``Read``
    answers the caller of the note whose text it names."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}
        self.noted = asyncio.Condition()

    @rpc(NOTE_ROUTE)
    async def note(self, req: SayRequest, ctx: Context) -> SayReply:
        async with self.noted:
            self.notes[req.text] = id_text(ctx.caller) if ctx.caller else ""
            self.noted.notify_all()
        return SayReply(text=req.text)

    @rpc(READ_ROUTE)
    async def read(self, req: SayRequest, ctx: Context) -> SayReply:
        # A tell and a call from one peer can be handled in either order when handlers
        # overlap (the daemon runs several), so Read waits for the note, bounded.
        async with self.noted:
            try:
                await asyncio.wait_for(self.noted.wait_for(lambda: req.text in self.notes), 10)
            except TimeoutError:
                raise NotFound(f"no tell with text {req.text!r} was handled") from None
        return SayReply(text=req.text, served_by=self.notes[req.text])
