#include "cli/admin_commands.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iomanip>

#include "base/size_parse.h"
#include "cli/copy_command.h"
#include "cli/volume_commands.h"

namespace ferry::cli {
namespace {
using json = nlohmann::json;
}  // namespace

std::string Str(const json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// Fixed-width columns sized to their widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out << r[i];
      if (i + 1 < r.size()) out << std::string(w[i] - r[i].size() + 2, ' ');
    }
    out << "\n";
  }
}

Result<json> CallAdmin(const std::string& socket_path, const std::string& method,
                       const json& params) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(sa.sun_path)) return InvalidArgument("socket path too long");
  std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  timeval tv{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, "cannot connect to ferryd at " + socket_path +
                                " (is ferryd running? --socket names another path)");
  }
  const std::string req =
      json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}}.dump() + "\n";
  std::string buf;
  bool ok = send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  char chunk[8192];
  while (ok && buf.find('\n') == std::string::npos) {
    const ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
    if (r <= 0)
      ok = false;
    else
      buf.append(chunk, static_cast<size_t>(r));
  }
  close(fd);
  if (!ok) return Unavailable("ferryd closed the admin connection without an answer");
  json resp = json::parse(buf.substr(0, buf.find('\n')), nullptr, false);
  if (resp.is_discarded() || !resp.is_object()) return Internal("ferryd sent something not JSON");
  if (auto e = resp.find("error"); e != resp.end()) {
    return Internal("ferryd: " + Str(*e, "message"));
  }
  auto r = resp.find("result");
  if (r == resp.end()) return Internal("ferryd's answer has no result");
  return *r;
}

// Third-party copy counters (EXTENDED COPY, ODX): commands, and bytes by mechanism.
void PrintCopy(const json& c, std::ostream& out) {
  if (c.empty()) return;
  const json cmd = c.value("commands", json::object());
  out << "copies: " << Str(cmd, "extended_copy") << " EXTENDED COPY, " << Str(cmd, "populate_token")
      << " POPULATE TOKEN, " << Str(cmd, "write_using_token") << " WRITE USING TOKEN ("
      << Str(cmd, "failed") << " failed, " << Str(cmd, "aborted") << " aborted), "
      << Str(c, "active") << " running\n";
  out << "copied: " << FormatSize(c.value("bytes_offloaded", uint64_t{0})) << " offloaded, "
      << FormatSize(c.value("bytes_emulated", uint64_t{0})) << " emulated (";
  const char* sep = "";
  const json mech = c.value("mechanisms", json::object());
  for (const auto& [name, bytes] : mech.items()) {
    out << sep << name << " " << FormatSize(bytes.get<uint64_t>());
    sep = ", ";
  }
  const json tok = c.value("tokens", json::object());
  out << "); tokens " << Str(tok, "live") << " live, " << Str(tok, "created") << " made, "
      << Str(tok, "revoked") << " revoked\n";
  for (const auto& note : c.value("offload_notes", json::array())) {
    out << "not offloaded: " << note.get<std::string>() << "\n";
  }
}

void PrintStatus(const json& r, std::ostream& out) {
  out << "ferryd pid " << Str(r, "pid") << ", up " << Str(r, "uptime_s") << " s, state in "
      << Str(r, "state_dir") << "\n";
  out << "portals:";
  for (const auto& p : r.value("portals", json::array())) out << " " << p.get<std::string>();
  out << "\n";
  const json st = r.value("stats", json::object());
  out << "sessions " << Str(r, "sessions") << ", connections " << Str(r, "connections")
      << ", logins " << Str(st, "logins") << " (" << Str(st, "login_failures")
      << " refused), commands " << Str(st, "commands") << ", rejects " << Str(st, "rejects")
      << "\n";
  std::vector<std::vector<std::string>> rows = {{"TARGET", "LUNS", "ACL", "CHAP"}};
  for (const auto& t : r.value("targets", json::array())) {
    const bool open = t.value("acl_entries", 0) == 0;
    rows.push_back({Str(t, "name"), Str(t, "luns"),
                    open ? "open" : Str(t, "acl_entries") + " entries",
                    t.value("chap", false) ? "required" : "-"});
  }
  PrintTable(rows, out);
  PrintCopy(r.value("copy", json::object()), out);
}

void PrintSessions(const json& r, std::ostream& out) {
  if (r.empty()) {
    out << "no sessions\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"INITIATOR", "TARGET", "TYPE", "PEER", "ISID", "TSIH", "DIGESTS", "CHAP", "CMDS"}};
  for (const auto& s : r) {
    rows.push_back({Str(s, "initiator"), s.value("target", "").empty() ? "-" : Str(s, "target"),
                    Str(s, "type"), Str(s, "peer"), Str(s, "isid"), Str(s, "tsih"),
                    Str(s, "header_digest") + "/" + Str(s, "data_digest"),
                    s.value("chap", false) ? "yes" : "no", Str(s, "commands")});
  }
  PrintTable(rows, out);
}

void PrintLuns(const json& r, std::ostream& out) {
  std::vector<std::vector<std::string>> rows = {
      {"TARGET", "LUN", "BACKSTORE", "TYPE", "SIZE", "BLOCK", "WP", "SERIAL", "SESSIONS"}};
  for (const auto& l : r) {
    rows.push_back({Str(l, "target"), Str(l, "lun"), Str(l, "backstore"), Str(l, "type"),
                    FormatSize(l.value("size_bytes", uint64_t{0})), Str(l, "block_size"),
                    l.value("write_protect", false) ? "yes" : "no", Str(l, "serial"),
                    Str(l, "target_sessions")});
  }
  PrintTable(rows, out);
}

std::string DefaultAdminSocket() {
  std::error_code ec;
  return std::filesystem::exists(kServiceAdminSocket, ec) ? kServiceAdminSocket : kStateAdminSocket;
}

void AddAdminCommands(CLI::App& app, AdminArgs* args) {
  app.add_option("--socket", args->socket,
                 std::string("ferryd's admin socket (default ") + kServiceAdminSocket +
                     " when it exists, else " + kStateAdminSocket + ")");
  struct Cmd {
    const char* name;
    const char* help;
  };
  for (const Cmd& c : {Cmd{"status", "ferryd's portals, targets and counters"},
                       Cmd{"sessions", "the iSCSI sessions logged in now"},
                       Cmd{"luns", "every LUN with its backstore, size and identity"}}) {
    app.add_subcommand(c.name, c.help)->add_flag("--json", args->json, "print ferryd's JSON");
  }
  AddVolumeCommands(app, &args->volume);
  AddConfigCommands(app, &args->config);
  CLI::App* lun = app.add_subcommand("lun", "change a target's LUNs while ferryd runs");
  lun->require_subcommand(1);
  CLI::App* add =
      lun->add_subcommand("add", "map a backstore or volume as a LUN (until ferryd restarts)");
  add->add_option("TARGET", args->target, "target IQN")->required();
  add->add_option("LUN", args->lun, "LUN number (0..16383)")->required();
  add->add_option("BACKSTORE", args->backstore, "backstore or volume name")->required();
  add->add_flag("--write-protect", args->write_protect, "the LUN is write-protected");
  CLI::App* remove = lun->add_subcommand("remove", "unmap a LUN (until ferryd restarts)");
  remove->add_option("TARGET", args->target, "target IQN")->required();
  remove->add_option("LUN", args->lun, "LUN number")->required();
}

int RunLun(CLI::App& lun, const AdminArgs& args, std::ostream& out, std::ostream& err) {
  const bool add = lun.get_subcommand("add")->parsed();
  json params = {{"target", args.target}, {"lun", args.lun}};
  if (add) {
    params["backstore"] = args.backstore;
    params["write_protect"] = args.write_protect;
  }
  auto r = CallAdmin(args.socket, add ? "lun_map" : "lun_unmap", params);
  if (!r.ok()) {
    err << "ferryctl lun " << (add ? "add" : "remove") << ": " << r.status().message() << "\n";
    return kExitCopyFailed;
  }
  if (add) {
    out << args.target << " LUN " << args.lun << ": backstore " << args.backstore
        << (args.write_protect ? " (write-protected)" : "") << "\n";
  } else {
    out << args.target << " LUN " << args.lun << ": removed\n";
  }
  return kExitOk;
}

int RunAdmin(CLI::App& app, const AdminArgs& args, std::ostream& out, std::ostream& err) {
  if (CLI::App* lun = app.get_subcommand("lun"); lun->parsed()) return RunLun(*lun, args, out, err);
  if (CLI::App* c = app.get_subcommand("config"); c->parsed()) {
    return RunConfig(*c, args.socket, args.config, out, err);
  }
  if (CLI::App* v = app.get_subcommand("volume"); v->parsed()) {
    return RunVolume(*v, args.socket, args.volume, out, err);
  }
  for (const char* m : {"status", "sessions", "luns"}) {
    if (!app.get_subcommand(m)->parsed()) continue;
    auto r = CallAdmin(args.socket, m, json::object());
    if (!r.ok()) {
      err << "ferryctl " << m << ": " << r.status().message() << "\n";
      return kExitCopyFailed;
    }
    if (args.json)
      out << r->dump(2) << "\n";
    else if (std::string_view(m) == "status")
      PrintStatus(*r, out);
    else if (std::string_view(m) == "sessions")
      PrintSessions(*r, out);
    else
      PrintLuns(*r, out);
    return kExitOk;
  }
  return -1;
}

}  // namespace ferry::cli
