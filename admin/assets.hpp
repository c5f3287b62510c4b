#pragma once
// The admin page's files (index.html, admin.js, admin.css), built into the program so that a
// node serves them wherever it runs. The .cpp is generated from the files of this folder at
// build time (embed.cmake).

#include <string_view>

namespace driftd::admin {

struct asset {
  std::string_view name;          ///< file name, e.g. "admin.js"
  std::string_view content_type;  ///< e.g. "text/javascript; charset=utf-8"
  std::string_view body;
};

/// The file `name` ("" for index.html); null for a name that is not one of them. Any thread.
const asset* find_asset(std::string_view name);

}  // namespace driftd::admin
