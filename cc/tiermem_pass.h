/* tiermem_pass.h -- what the files of the tiermem LLVM pass plugin share.
 *
 * The plugin gives every allocation call of a program a site id at compile
 * time: the call is rewritten to tm_cc_*(id, ...) and the site's record
 * (file, function, line, column, callee, wrapper chain) travels in the
 * object in a ".note.tiermem" ELF note.  doc/compiler.md describes it. */
#ifndef TIERMEM_PASS_H
#define TIERMEM_PASS_H

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "llvm/ADT/StringRef.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/Module.h"

namespace tiermem {

/* ---------------------------------------------------------- alloc_calls.cpp */

/* One allocation function the pass knows, and its tm_cc_* replacement. */
struct AllocKind {
  const char *callee;      /* the C or mangled C++ name */
  const char *replacement; /* tm_cc_* */
  unsigned nparams;        /* the callee's parameters */
  unsigned npassed;        /* how many of them (a prefix) tm_cc_* takes */
  bool returns_pointer;    /* false for posix_memalign's int */
};

/* The kind of a direct call to an allocation function declared (not
 * defined) in the module, or null.  A module that defines its own malloc
 * keeps its calls to it. */
const AllocKind *alloc_kind_of(const llvm::CallBase &call);

/* The function a call calls directly (through pointer casts), or null for
 * a call through a pointer. */
llvm::Function *direct_callee(const llvm::CallBase &call);

/* Replaces `old` (a call or an invoke: the unwind edge is kept) by a fresh
 * call of `callee` with `args`; returns the new call. */
llvm::CallBase *replace_call(llvm::CallBase &old, llvm::FunctionCallee callee,
                             llvm::ArrayRef<llvm::Value *> args);

/* Rewrites an allocation call to its tm_cc_* function with site id `id`. */
llvm::CallBase *rewrite_alloc_call(llvm::CallBase &call, const AllocKind &kind,
                                   llvm::Value *id);

/* A runtime entry point that allocates inside an uninstrumented library
 * (flang's _FortranAAllocatableAllocate): its call stays, announced by
 * tm_cc_next_site(id) before it and tm_cc_next_site(0) after, and the
 * runtime gives the id to the thread's next allocation. */
struct AnnouncedKind {
  const char *callee;
  unsigned nparams;
  unsigned line_arg; /* the parameter holding the statement's source line */
};

/* The kind of a direct call to such an entry point (declared, not defined,
 * in the module, with its known prototype), or null. */
const AnnouncedKind *announced_kind_of(const llvm::CallBase &call);

/* The source line the call passes to the runtime, or 0 if not a constant. */
unsigned announced_line(const llvm::CallBase &call, const AnnouncedKind &kind);

/* Brackets a call (not an invoke) with tm_cc_next_site(id) and
 * tm_cc_next_site(0); false, and nothing changed, for an invoke. */
bool announce_site(llvm::CallBase &call, llvm::Value *id);

/* ------------------------------------------------------------ site_id.cpp */

/* Where a call was written. */
struct SiteWhere {
  std::string file;     /* relative to the root, else as given */
  std::string function; /* the function it was written in */
  unsigned line = 0, column = 0;
};

/* One site, as its note record says. */
struct Site {
  uint64_t id = 0;
  SiteWhere where;
  std::string callee; /* what the call at the site calls */
  std::string chain;  /* "" or "wrapper>...>allocator" */
};

/* Where `call` was written: its debug location, else the IR function and
 * `module_file` (module_source_file) with line 0. */
SiteWhere site_where(const llvm::CallBase &call, const std::string &root,
                     const std::string &module_file);

/* The module's source file: its own name, but for flang's "FIRModule" the
 * file its Fortran runtime calls name. */
std::string module_source_file(const llvm::Module &m);

/* The directory ids are relative to: $TIERMEM_CC_ROOT, else the working
 * directory of the compile. */
std::string site_root();

/* `path` relative to `root` when it is under it, else as given. */
std::string path_under_root(const std::string &path, const std::string &root);

/* FNV-1a 64 of the fields that name a site, top two bits 10. */
uint64_t site_id(const SiteWhere &where, const std::string &callee,
                 unsigned ordinal);

/* Numbers sites that share everything but the ordinal. */
class SiteNumbering {
public:
  Site next(const SiteWhere &where, const std::string &callee,
            const std::string &chain);

private:
  std::map<std::string, unsigned> seen_;
};

/* ---------------------------------------------------------- site_note.cpp */

/* Adds the ".note.tiermem" note holding `sites` to the module. */
void emit_site_note(llvm::Module &m, const std::vector<Site> &sites);

/* Has the module been instrumented already (its note exists)? */
bool module_has_site_note(const llvm::Module &m);

/* ----------------------------------------------------------- wrappers.cpp */

/* The module's allocation wrappers and their clones that take a site id. */
struct Wrappers {
  std::set<llvm::Function *> found;        /* every wrapper */
  std::set<llvm::Function *> named;        /* of them, by TIERMEM_CC_WRAPPERS */
  /* TIERMEM_CC_WRAPPERS names this module only declares: defined in
   * another file, their calls are bracketed (bracket_wrapper_call) */
  std::set<llvm::Function *> external;
  std::map<llvm::Function *, llvm::Function *> clone_of;
  std::map<llvm::Function *, std::string> chain; /* "w>inner>malloc" */
  std::vector<std::string> warnings;
};

/* Finds the wrappers (auto-detected and named), clones each with a leading
 * i64 site-id parameter, and rewrites the clones' own allocation and
 * wrapper calls to pass that id down. */
Wrappers find_and_clone_wrappers(llvm::Module &m, bool verbose);

bool is_wrapper_clone(const llvm::Function &f);

/* Brackets a call of a wrapper defined in another file with
 * prev = tm_cc_wrap_enter(id) before it and tm_cc_wrap_leave(prev) after
 * it (after an invoke, on its normal and its unwind edge); false, and
 * nothing changed, for an invoke whose unwind edge is not a landingpad's. */
bool bracket_wrapper_call(llvm::CallBase &call, llvm::Value *id);

} // namespace tiermem

#endif
