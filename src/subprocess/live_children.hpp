// The children each loop of this thread still has (their transports not finished), so that run() (runner.hpp)
// does not close a loop over running or unreaped children: the first child of a loop registers a shutdown hook
// that closes every transport still alive (killing what still runs, as closing asyncio's transports does) and
// waits until each was reaped and finished. Without run(), close or wait for your children yourself.
#pragma once

namespace tulipa {
class EventLoop;
}

namespace tulipa::detail {

class SubprocessTransportImpl;

void track_child(EventLoop& loop, SubprocessTransportImpl* t);
void untrack_child(EventLoop& loop, SubprocessTransportImpl* t) noexcept;

}  // namespace tulipa::detail
