// Nicks and private messages across instances (--redis: bus/redis_bus.hpp). A hub alone keeps its nicks in its own
// map; with a directory, a nick is also claimed for the instance in a place every instance sees, so that it is
// unique across them, and a private message to a nick held elsewhere is handed to the instance that holds it. Guest
// names need no claim: each instance gives its own (guest_prefix() is unique to it).
//
// Threads: the loop's thread; callbacks run later (never inside the call that was given them), on the loop's thread.
// Callbacks may outlive the hub (they hold it weakly).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "message.hpp"

namespace chat {

class Directory {
 public:
  // `ok`: the nick is this instance's now (claim), or an instance took the message (route). `error`: why nothing
  // could be checked (the directory is unreachable); empty when the answer is a plain no.
  using Done = std::function<void(bool ok, std::string error)>;

  virtual ~Directory() = default;
  // "guest-<instance>-": the start of the guest names this instance gives (no other instance gives them).
  virtual std::string_view guest_prefix() const = 0;
  // Claims `key` (a folded nick) for this instance: ok once it is, not ok when a live instance holds it.
  virtual void claim(std::string key, Done done) = 0;
  // Gives `key` back (no session of this instance is called so any more). Fire and forget.
  virtual void release(std::string key) = 0;
  // Hands the stored private message `m` to the instance whose session is called m.to (it comes to that instance's
  // Hub::deliver): ok when an instance took it.
  virtual void route(const Message& m, Done done) = 0;
};

}  // namespace chat
