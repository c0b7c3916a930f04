// The children each loop still has (their transports not finished), kept on the loop (a LoopExtension):
// - so that run() (runner.hpp) does not close a loop over running or unreaped children: the first child of a loop
//   registers a shutdown hook that closes every transport still alive (killing what still runs, as closing
//   asyncio's transports does) and waits until each was reaped and finished;
// - so that a loop closed over children anyway (without run(), or a child spawned after its shutdown hooks) leaks
//   nothing: its close() kills and reaps each child still unreaped (SubprocessTransportImpl::end_at_loop_close), and
//   their transports finish from the callbacks the loop then drops (subprocess_transport.hpp).
#pragma once

namespace tulipa {
class EventLoop;
}

namespace tulipa::detail {

class SubprocessTransportImpl;

void track_child(EventLoop& loop, SubprocessTransportImpl* t);
void untrack_child(EventLoop& loop, SubprocessTransportImpl* t) noexcept;

}  // namespace tulipa::detail
