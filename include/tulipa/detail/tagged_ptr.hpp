// TaggedPtr: a pointer and a few bits of tag in one word.
//
// Why: some objects are paid for per connection or per coroutine frame (a promise's link to its awaiter, a Bytes,
// a stream waiter), and a word saved there is a word saved a million times. An object aligned to 2^Bits bytes has
// an address whose low Bits bits are zero, so they can carry a tag. Each user keeps one TaggedPtr and draws its
// word's layout as a table beside it (what each tag means, what the pointer is then); the bit arithmetic lives
// here only.
//
// The pointer is untyped (a word may point at one of several types, told apart by its tag): ptr<T>() reads it as
// a T*. A pointer of a known type is checked at compile time (its type's alignment leaves Bits bits free); an
// address whose alignment comes from an allocator rather than from its type (a coroutine frame, a pool chunk) goes
// through from_aligned(), and the caller says why it is aligned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace tulipa::detail {

template <unsigned Bits>
class TaggedPtr {
  static_assert(Bits >= 1 && Bits <= 4, "a tag of 1 to 4 bits (an address 2 to 16-byte aligned)");

 public:
  using Tag = std::uintptr_t;
  static constexpr Tag tag_mask = (Tag{1} << Bits) - 1;
  // Whether every T* leaves the tag's bits free.
  template <class T>
  static constexpr bool fits = alignof(T) >= (std::size_t{1} << Bits);

  // The null pointer with tag 0 (also what a moved-from word holds).
  constexpr TaggedPtr() noexcept = default;
  // `p` (null or not) with `tag` (at most tag_mask).
  template <class T>
    requires(!std::is_void_v<std::remove_cv_t<T>>)
  TaggedPtr(T* p, Tag tag) noexcept : word_(reinterpret_cast<Tag>(p) | tag) {
    static_assert(fits<T>, "this type's alignment leaves too few low bits for the tag: use from_aligned()");
  }
  // An address aligned to 2^Bits by where it came from (an allocator), not by its type.
  static TaggedPtr from_aligned(const void* p, Tag tag) noexcept {
    TaggedPtr t;
    t.word_ = reinterpret_cast<Tag>(p) | tag;
    return t;
  }

  template <class T = void>
  T* ptr() const noexcept {
    return reinterpret_cast<T*>(word_ & ~tag_mask);
  }
  Tag tag() const noexcept { return word_ & tag_mask; }
  // Whether any of the tag bits `bits` is set.
  bool test(Tag bits) const noexcept { return (word_ & bits) != 0; }
  // Sets the tag bits `bits` and keeps the pointer and the other bits.
  void set(Tag bits) noexcept { word_ |= bits & tag_mask; }
  // False only for the null pointer with tag 0.
  explicit operator bool() const noexcept { return word_ != 0; }

  friend bool operator==(TaggedPtr a, TaggedPtr b) noexcept { return a.word_ == b.word_; }

 private:
  Tag word_ = 0;
};

static_assert(sizeof(TaggedPtr<1>) == sizeof(void*) && sizeof(TaggedPtr<4>) == sizeof(void*));
static_assert(std::is_trivially_copyable_v<TaggedPtr<3>>);

}  // namespace tulipa::detail
