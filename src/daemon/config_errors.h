// Every error of a configuration file, not only the first: what `ferryctl config reload`
// and `config diff` report, so that one round of fixes is enough.
//
// ParseConfig stays a pure decoder that stops at its first error (it is fuzzed as such).
// ConfigErrors runs it repeatedly: after each error it takes the object the error lies in
// out of the document (a LUN, ACL entry or portal group of a target, else the target,
// backstore, volume, auth group or global key) and parses again. Errors that only follow
// from an object taken out (a LUN naming a backstore that was taken out, "no targets" once
// every target was) are not reported. Paths are those of the original document: array
// indexes count the elements taken out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::daemon {

// Each error as ParseConfig words it ("$.json.path: reason"), in the order found; empty
// when ParseConfig accepts `text`. Invalid JSON gives one error (nothing else can be read).
std::vector<std::string> ConfigErrors(std::string_view text);

}  // namespace ferry::daemon
