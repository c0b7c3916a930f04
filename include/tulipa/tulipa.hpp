// The whole core of tulipa in one include: the event loop, transports and protocols, coroutines, tasks,
// combinators, timeouts, task groups, streams, synchronisation, queues, subprocesses and threads.
//
//   #include "tulipa/tulipa.hpp"      // link tulipa::tulipa (CMake) or `pkg-config tulipa`
//
// Components are included on their own, beside the library they need: TLS is "tulipa/tls_streams.hpp" (streams),
// "tulipa/tls_net.hpp" (transports) and "tulipa/tls.hpp" (SslContext), linked as tulipa::tls / `tulipa-tls`.
// tests/consumer/ checks that this file names every public header of the core.
#pragma once

#include "tulipa/bytes.hpp"
#include "tulipa/callback.hpp"
#include "tulipa/cancel.hpp"
#include "tulipa/clock.hpp"
#include "tulipa/combinators.hpp"
#include "tulipa/coro.hpp"
#include "tulipa/dns.hpp"
#include "tulipa/executor.hpp"
#include "tulipa/future.hpp"
#include "tulipa/handle.hpp"
#include "tulipa/loop.hpp"
#include "tulipa/loop_group.hpp"
#include "tulipa/mailbox.hpp"
#include "tulipa/net.hpp"
#include "tulipa/process.hpp"
#include "tulipa/protocol.hpp"
#include "tulipa/queue.hpp"
#include "tulipa/runner.hpp"
#include "tulipa/selector.hpp"
#include "tulipa/server.hpp"
#include "tulipa/sleep.hpp"
#include "tulipa/sock.hpp"
#include "tulipa/socket_address.hpp"
#include "tulipa/streams.hpp"
#include "tulipa/subprocess.hpp"
#include "tulipa/sync.hpp"
#include "tulipa/task.hpp"
#include "tulipa/taskgroup.hpp"
#include "tulipa/threadsafe.hpp"
#include "tulipa/timeout.hpp"
#include "tulipa/to_thread.hpp"
#include "tulipa/transport.hpp"
