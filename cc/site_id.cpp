/* site_id.cpp -- where an allocation call was written, and its site id.
 *
 * An id must be the same in every build of the same source: it hashes
 * only what the source says (the file relative to the root, the function,
 * line, column, callee, ordinal), never the build directory, the -O level
 * or the other files of the program.  The pass runs before any inlining,
 * so a call's own debug location is where it was written; the
 * scope chain is still walked to its subprogram for a call already
 * inlined (IR given to clang after -O). */
#include "tiermem_pass.h"

#include <cstdlib>

#include "llvm/ADT/SmallString.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/Instructions.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace tiermem {

static std::string normalized_absolute(StringRef path, StringRef dir) {
  SmallString<256> out(path);
  if (!sys::path::is_absolute(out)) {
    if (!dir.empty()) {
      SmallString<256> joined(dir);
      sys::path::append(joined, path);
      out = joined;
    }
    sys::fs::make_absolute(out);
  }
  sys::path::remove_dots(out, /*remove_dot_dot=*/true);
  return std::string(out);
}

std::string site_root() {
  const char *env = std::getenv("TIERMEM_CC_ROOT");
  SmallString<256> root;
  if (env && *env)
    root = env;
  else if (sys::fs::current_path(root))
    return "";
  return normalized_absolute(root, "");
}

std::string path_under_root(const std::string &path, const std::string &root) {
  if (root.empty())
    return path;
  StringRef p(path);
  if (!p.startswith(root))
    return path;
  StringRef rest = p.drop_front(root.size());
  if (root.back() != '/') {
    if (rest.empty() || rest.front() != '/')
      return path; /* /a/bc is not under /a/b */
    rest = rest.drop_front();
  }
  return std::string(rest);
}

/* The function a location was written in: its subprogram's linkage name
 * (C++), else its name (C). */
static std::string written_in(const DILocation *loc) {
  DISubprogram *sp = loc->getScope()->getSubprogram();
  if (!sp)
    return "";
  StringRef name = sp->getLinkageName();
  return std::string(name.empty() ? sp->getName() : name);
}

static bool is_fortran_file(StringRef name) {
  for (const char *suffix : {".f", ".F", ".for", ".f90", ".F90", ".f95",
                             ".F95", ".f03", ".F03", ".f08", ".F08"})
    if (name.endswith(suffix))
      return true;
  return false;
}

/* A flang runtime call's sourceFile argument: flang's runtime API ends its
 * calls in (const char *sourceFile, int sourceLine), the file a constant
 * "_QQcl.<hex>" string. */
static StringRef flang_source_arg(const CallBase &call) {
  Function *callee = call.getCalledFunction();
  if (!callee || !callee->getName().startswith("_FortranA"))
    return "";
  unsigned n = call.arg_size();
  if (n < 2 || !call.getArgOperand(n - 1)->getType()->isIntegerTy(32))
    return "";
  auto *g = dyn_cast<GlobalVariable>(
      call.getArgOperand(n - 2)->stripPointerCasts());
  if (!g || !g->getName().startswith("_QQcl.") || !g->hasInitializer())
    return "";
  auto *data = dyn_cast<ConstantDataSequential>(g->getInitializer());
  if (!data || !data->isString())
    return "";
  StringRef file = data->getAsString();
  file = file.take_until([](char c) { return c == '\0'; });
  return is_fortran_file(file) ? file : "";
}

std::string module_source_file(const Module &m) {
  /* flang-new 16 names every module "FIRModule" and emits no debug info:
   * the file its runtime calls report is the source's name */
  if (m.getSourceFileName() != "FIRModule")
    return m.getSourceFileName();
  for (const Function &f : m)
    for (const BasicBlock &bb : f)
      for (const Instruction &i : bb)
        if (auto *call = dyn_cast<CallBase>(&i)) {
          StringRef file = flang_source_arg(*call);
          if (!file.empty())
            return std::string(file);
        }
  return m.getSourceFileName();
}

SiteWhere site_where(const CallBase &call, const std::string &root,
                     const std::string &module_file) {
  SiteWhere where;
  if (const DILocation *loc = call.getDebugLoc().get()) {
    /* loc itself is the innermost frame: where the call was written, even
     * when inlinedAt says where that code was inlined to. */
    std::string file = normalized_absolute(loc->getFilename(),
                                           loc->getDirectory());
    where.file = path_under_root(file, root);
    where.function = written_in(loc);
    where.line = loc->getLine();
    where.column = loc->getColumn();
  }
  if (where.function.empty())
    where.function = std::string(call.getFunction()->getName());
  if (where.file.empty()) {
    std::string file = normalized_absolute(module_file, "");
    where.file = path_under_root(file, root);
  }
  return where;
}

/* FNV-1a 64: tiny, no dependency, and stable forever (it is a format). */
class Fnv1a {
public:
  void bytes(const void *data, size_t n) {
    const unsigned char *p = static_cast<const unsigned char *>(data);
    for (size_t i = 0; i < n; i++) {
      hash_ ^= p[i];
      hash_ *= 0x100000001b3ULL;
    }
  }
  /* Each field ends in a NUL, so ("ab","c") and ("a","bc") differ. */
  void field(const std::string &s) { bytes(s.c_str(), s.size() + 1); }
  void field(uint32_t v) {
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                           (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    bytes(le, sizeof le);
  }
  uint64_t value() const { return hash_; }

private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

uint64_t site_id(const SiteWhere &where, const std::string &callee,
                 unsigned ordinal) {
  Fnv1a h;
  h.field(where.file);
  h.field(where.function);
  h.field(where.line);
  h.field(where.column);
  h.field(callee);
  h.field(ordinal);
  /* Top bits 10: the runtime's stack keys have bit 63 clear, so a
   * compiler site id never equals one. */
  const uint64_t low62 = (1ULL << 62) - 1;
  return (h.value() & low62) | (1ULL << 63);
}

Site SiteNumbering::next(const SiteWhere &where, const std::string &callee,
                         const std::string &chain) {
  std::string key = where.file + '\0' + where.function + '\0' +
                    std::to_string(where.line) + ':' +
                    std::to_string(where.column) + '\0' + callee;
  unsigned ordinal = seen_[key]++;
  Site site;
  site.id = site_id(where, callee, ordinal);
  site.where = where;
  site.callee = callee;
  site.chain = chain;
  return site;
}

} // namespace tiermem
