"""Tool-output masking: bulky tool results shrink to a stub when their turn is committed.

A tool result is sent in full while its turn runs (the model needs it to answer). When the turn
is committed, a result longer than the state's ``tool_output_limit`` (characters) is replaced in
the committed history by a stub: the head of the output and a line saying how much was archived.
The full result goes to the state's archive, so nothing is lost, and the history that will be
cached from then on carries the stub. The recent turns sit after the cached prefix, so the
change costs no cache miss.

Turn it on for a session::

    manager = PromptManager(SYSTEM, tool_output_limit=600)
    ...
    full = find_archived(manager.state, stub.id)   # the full output, when it is needed again
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from llmvoice.messages import Message

if TYPE_CHECKING:
    from llmvoice.state import State

__all__ = ["MASKED_NOTE", "find_archived", "mask_tool_output"]

#: The line that ends a stub; ``{archived}`` is the number of characters moved to the archive and
#: ``{id}`` the message id that :func:`find_archived` takes.
MASKED_NOTE: Final[str] = "[... {archived} more characters of this tool output were archived (message {id})]"
_MIN_HEAD: Final[int] = 16


def _head(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, cut back to a word boundary when one is near."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if text[limit].isspace():
        return head.rstrip()
    space = head.rfind(" ")
    if space >= max(limit * 3 // 4, _MIN_HEAD):
        head = head[:space]
    return head.rstrip()


def mask_tool_output(message: Message, limit: int) -> tuple[Message, Message] | None:
    """The stub that stands for a long tool result in the committed history, and the archived original.

    Args:
        message: a committed block.
        limit: the most characters of the output the stub keeps.

    Returns:
        ``(stub, original)`` for a tool result whose text is longer than ``limit`` (the stub keeps
        the id, call id and name; the original is marked ``kind="masked"`` for the archive), or
        ``None`` when the block stays as it is (not a tool result, short enough, or not text).
    """
    if message.role != "tool" or message.kind != "message" or not isinstance(message.content, str):
        return None
    text = message.content
    if len(text) <= limit:
        return None
    head = _head(text, limit)
    note = MASKED_NOTE.format(archived=len(text) - len(head), id=message.id)
    stub = Message(
        message.role,
        f"{head}\n{note}" if head else note,
        message.tool_calls,
        message.tool_call_id,
        message.name,
        message.extra,
        message.id,
    )
    original = Message(
        message.role,
        message.content,
        message.tool_calls,
        message.tool_call_id,
        message.name,
        message.extra,
        message.id,
        "masked",
    )
    return stub, original


def find_archived(state: State, message_id: int) -> Message | None:
    """The full form of an archived block: a masked tool output, or a block a rebase archived.

    Args:
        state: the session state.
        message_id: the block's id (a stub's own id gives its full output).

    Returns:
        The archived block (a masked original comes back as a plain tool message), or ``None``
        when the archive holds no block with that id.
    """
    found: Message | None = None
    for message in state.archive:
        if message.id == message_id and (found is None or message.kind == "masked"):
            found = message
    if found is not None and found.kind == "masked":
        return Message(
            found.role, found.content, found.tool_calls, found.tool_call_id, found.name, found.extra, found.id
        )
    return found
