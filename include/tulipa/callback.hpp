// Callback: a move-only `void()` callable with inline storage, the unit of work the event loop schedules.
//
// Why not std::function: it must be copyable (so it cannot hold a unique_ptr or a coroutine handle owner) and it
// allocates for anything larger than two pointers in libstdc++. A Callback stores callables of up to
// `Callback::inline_size` bytes inline, which covers a lambda capturing six pointers; larger ones go to the heap,
// which is the only allocation scheduling can make (the benchmarks count it).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace tulipa {

class Callback {
 public:
  static constexpr std::size_t inline_size = 48;

  Callback() noexcept = default;
  Callback(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): `cb = nullptr`, as std::function

  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Callback> && std::is_invocable_r_v<void, std::decay_t<F>&>)
  Callback(F&& f) {  // NOLINT(google-explicit-constructor): a lambda converts to a callback as it does to std::function
    using Fn = std::decay_t<F>;
    if constexpr (fits_inline<Fn>) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
      ops_ = &inline_ops<Fn>;
    } else {
      *reinterpret_cast<Fn**>(storage_) = new Fn(std::forward<F>(f));
      ops_ = &heap_ops<Fn>;
    }
  }

  Callback(Callback&& other) noexcept : ops_(other.ops_) {
    if (ops_) {
      ops_->move(other.storage_, storage_);
      other.ops_ = nullptr;
    }
  }
  Callback& operator=(Callback&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      if (ops_) {
        ops_->move(other.storage_, storage_);
        other.ops_ = nullptr;
      }
    }
    return *this;
  }
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;
  ~Callback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  void operator()() { ops_->call(storage_); }
  void reset() noexcept {
    if (ops_) {
      auto ops = std::exchange(ops_, nullptr);
      ops->destroy(storage_);
    }
  }
  // True when the callable lives on the heap (for tests and benchmarks that count allocations).
  bool is_heap_allocated() const noexcept { return ops_ && ops_->heap; }

  template <class Fn>
  static constexpr bool fits_inline =
      sizeof(Fn) <= inline_size && alignof(Fn) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<Fn>;

 private:
  struct Ops {
    void (*call)(void* storage);
    void (*move)(void* from, void* to) noexcept;  // move-constructs into `to` and destroys `from`
    void (*destroy)(void* storage) noexcept;
    bool heap;
  };
  template <class Fn>
  static constexpr Ops inline_ops{[](void* s) { (*static_cast<Fn*>(s))(); },
                                  [](void* from, void* to) noexcept {
                                    ::new (to) Fn(std::move(*static_cast<Fn*>(from)));
                                    static_cast<Fn*>(from)->~Fn();
                                  },
                                  [](void* s) noexcept { static_cast<Fn*>(s)->~Fn(); }, false};
  template <class Fn>
  static constexpr Ops heap_ops{
      [](void* s) { (**static_cast<Fn**>(s))(); },
      [](void* from, void* to) noexcept { *static_cast<Fn**>(to) = *static_cast<Fn**>(from); },
      [](void* s) noexcept { delete *static_cast<Fn**>(s); }, true};

  alignas(std::max_align_t) unsigned char storage_[inline_size];
  const Ops* ops_ = nullptr;
};

}  // namespace tulipa
