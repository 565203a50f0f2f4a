// The addon's one shape of a failed system call: "<op> [what]: <strerror>", with errno, syscall and code
// set, so JS branches on err.errno / err.code as it does on a Node.js system error.
#pragma once
#include <napi.h>
#include <errno.h>
#include <string.h>
#include <string>

inline Napi::Error errnoError(Napi::Env env, const char* op, int err, const std::string& what = "") {
  std::string msg = std::string(op) + (what.empty() ? "" : " " + what) + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, op));
  e.Set("code", Napi::String::New(env, err == ENOENT ? "ENOENT" : err == EPERM ? "EPERM" : err == EINVAL ? "EINVAL" : "ESYSCALL"));
  return e;
}
