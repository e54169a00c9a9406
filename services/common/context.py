"""FastStream's `Context` parameters, resolved on the event loop.

fast_depends awaits a custom field's `use` when it is a coroutine function and otherwise
runs it in a worker thread (anyio's to_thread). FastStream's `Context.use` is a plain
function, so every `Context(...)` parameter of a handler costs a thread hop per message:
in a profile of the projector, a tenth of its CPU went to handing dictionary look-ups to
a thread and back. `LoopContext` is the same look-up, declared async, so it stays on the loop.
"""

from __future__ import annotations

from typing import Annotated, Any

# The class behind faststream.Context (that name is a function returning one).
from faststream._internal.context.context_type import Context
from faststream.kafka.message import KafkaMessage as _KafkaMessage


class LoopContext(Context):
    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return Context.use(self, **kwargs)


# faststream.kafka.annotations.KafkaMessage, resolved on the loop.
KafkaMessage = Annotated[_KafkaMessage, LoopContext("message")]
