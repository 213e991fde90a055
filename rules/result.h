// Result<T, E>: a value or an error, the one error type of the code base (the message path must
// not throw). Result<void, E> is success or an error. TRIAGED_TRY and TRIAGED_ASSIGN_OR_RETURN
// propagate a failed Result's error from the enclosing function, in the style of Arrow's
// ARROW_RETURN_NOT_OK and ARROW_ASSIGN_OR_RAISE.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace triaged {

// An error on the message path: `reason` is a short stable label (used as a metric label and
// in dead-letter records), `message` is the human-readable detail.
struct Error {
  std::string reason;
  std::string message;
};

template <typename T, typename E = Error>
class Result {
  static_assert(!std::is_same_v<T, E>, "the value and error types of a Result must differ");

 public:
  template <typename U = T>
  requires(std::is_convertible_v<U&&, T> && !std::is_same_v<std::remove_cvref_t<U>, Result> &&
           !std::is_same_v<std::remove_cvref_t<U>, E>) Result(U&& value)
      : v_(std::in_place_index<0>, std::forward<U>(value)) {}        // NOLINT
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  E& error() & { return std::get<1>(v_); }
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, E> v_;
};

// Success (default-constructed: `return {};`) or an error.
template <typename E>
class Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok(); }

  E& error() & { return error_; }
  const E& error() const& { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_{};
  bool ok_ = true;
};

inline Error MakeError(std::string reason, std::string message) {
  return Error{std::move(reason), std::move(message)};
}

}  // namespace triaged

#define TRIAGED_RESULT_CONCAT_(a, b) a##b
#define TRIAGED_RESULT_CONCAT(a, b) TRIAGED_RESULT_CONCAT_(a, b)

// Evaluates `expr` (a Result); if it failed, returns its error from the enclosing function,
// whose return type must be constructible from that error (any Result with the same E).
#define TRIAGED_TRY(expr)                                                              \
  do {                                                                                 \
    if (auto&& triaged_try_result_ = (expr); !triaged_try_result_.ok()) {              \
      return std::forward<decltype(triaged_try_result_)>(triaged_try_result_).error(); \
    }                                                                                  \
  } while (false)

// Evaluates `expr` (a Result<T, E>); if it failed, returns its error, else moves its value
// into `lhs` (a declaration such as `auto x` or an existing variable).
#define TRIAGED_ASSIGN_OR_RETURN(lhs, expr) \
  TRIAGED_ASSIGN_OR_RETURN_IMPL_(TRIAGED_RESULT_CONCAT(triaged_result_, __COUNTER__), lhs, expr)
#define TRIAGED_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).error();        \
  lhs = std::move(tmp).value()
