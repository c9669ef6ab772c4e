"""Small async helpers shared by the client's services."""

from __future__ import annotations

import functools
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
)
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar

_T = TypeVar("_T")
_P = ParamSpec("_P")


class AsyncIteratorAndContextManager(Generic[_T]):
    """An async generator usable with ``async for`` and with ``async with``.

    ``async with`` guarantees the generator (and its HTTP response) is closed when
    the block ends, even if the loop breaks early.
    """

    __slots__ = ("_gen",)

    def __init__(self, gen: AsyncGenerator[_T, None]) -> None:
        self._gen = gen

    def __aiter__(self) -> AsyncIterator[_T]:
        return self._gen

    async def __anext__(self) -> _T:
        return await self._gen.__anext__()

    async def __aenter__(self) -> AsyncGenerator[_T, None]:
        return self._gen

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._gen.aclose()


def asyncgeneratorcontextmanager(
    func: Callable[_P, AsyncGenerator[_T, None]],
) -> Callable[_P, AsyncIteratorAndContextManager[_T]]:
    @functools.wraps(func)
    def wrapper(
        *args: _P.args, **kwargs: _P.kwargs
    ) -> AsyncIteratorAndContextManager[_T]:
        return AsyncIteratorAndContextManager(func(*args, **kwargs))

    return wrapper


class AwaitableContextManager(Generic[_T]):
    """``await get()`` and ``async with get() as client`` both work."""

    __slots__ = ("_coro", "_value")

    def __init__(self, coro: Coroutine[Any, Any, _T]) -> None:
        self._coro = coro
        self._value: _T | None = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._coro.__await__()

    async def __aenter__(self) -> _T:
        self._value = await self._coro
        return self._value

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        close = getattr(self._value, "close", None)
        if close is not None:
            await close()
