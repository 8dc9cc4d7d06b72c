/* tiermem_pass.cpp -- the tiermem pass plugin: registration, and the walk
 * that turns each direct allocation call into a site.
 *
 * It runs once per module at the start of the pipeline (every -O level,
 * -O0 included, and before any inlining, so a call's location is where it
 * was written and the ids do not depend on -O).  Calls through pointers
 * cannot be told from other calls: they are left alone and counted.  With
 * TIERMEM_CC_VERBOSE=1 it prints one summary per module. */
#include "tiermem_pass.h"

#include <cstdlib>

#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfo.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace tiermem {
namespace {

struct Summary {
  std::map<std::string, unsigned> by_kind;
  unsigned wrapper_calls = 0;
  unsigned external_wrapper_calls = 0;
  unsigned external_invokes_left = 0;
  unsigned through_pointers = 0;
};

static bool env_set(const char *name) {
  const char *v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

static bool is_call_through_pointer(const CallBase &call) {
  return !direct_callee(call) && !call.isInlineAsm();
}

/* Rewrites the direct allocation and wrapper calls of one (non-clone)
 * function, each a new site. */
static void rewrite_function(Function &f, const Wrappers &w,
                             const std::string &root,
                             const std::string &module_file,
                             SiteNumbering &numbers,
                             std::vector<Site> &sites, Summary &sum) {
  std::vector<CallBase *> calls;
  for (BasicBlock &bb : f)
    for (Instruction &i : bb)
      if (auto *call = dyn_cast<CallBase>(&i))
        calls.push_back(call);
  Type *i64 = Type::getInt64Ty(f.getContext());
  for (CallBase *call : calls) {
    if (is_call_through_pointer(*call)) {
      sum.through_pointers++;
      continue;
    }
    if (const AnnouncedKind *announced = announced_kind_of(*call)) {
      SiteWhere where = site_where(*call, root, module_file);
      if (where.line == 0) /* flang 16 emits no debug info: its argument */
        where.line = announced_line(*call, *announced);
      Site site = numbers.next(where, announced->callee, "");
      if (announce_site(*call, ConstantInt::get(i64, site.id))) {
        sites.push_back(site);
        sum.by_kind[announced->callee]++;
      }
      continue;
    }
    const AllocKind *kind = alloc_kind_of(*call);
    Function *callee = direct_callee(*call);
    if (callee && w.external.count(callee)) {
      /* a wrapper of another file: what it calls inside is unknown here,
       * the chain is its name alone */
      std::string name(callee->getName());
      SiteWhere where = site_where(*call, root, module_file);
      Site site = numbers.next(where, name, name);
      if (bracket_wrapper_call(*call, ConstantInt::get(i64, site.id))) {
        sites.push_back(site);
        sum.external_wrapper_calls++;
      } else {
        sum.external_invokes_left++;
      }
      continue;
    }
    auto clone = callee ? w.clone_of.find(callee) : w.clone_of.end();
    if (!kind && clone == w.clone_of.end())
      continue;
    SiteWhere where = site_where(*call, root, module_file);
    if (kind) {
      Site site = numbers.next(where, kind->callee, "");
      rewrite_alloc_call(*call, *kind, ConstantInt::get(i64, site.id));
      sites.push_back(site);
      sum.by_kind[kind->callee]++;
      continue;
    }
    Site site = numbers.next(where, std::string(callee->getName()),
                             w.chain.at(callee));
    SmallVector<Value *, 8> args{ConstantInt::get(i64, site.id)};
    for (Value *a : call->args())
      args.push_back(a);
    replace_call(*call, clone->second, args);
    sites.push_back(site);
    sum.wrapper_calls++;
  }
}

/* A wrapper clone nothing calls (every call was from another file) goes. */
static void drop_unused_clones(const Wrappers &w) {
  for (auto &pair : w.clone_of)
    if (pair.second->use_empty())
      pair.second->eraseFromParent();
}

static void warn_duplicate_ids(const Module &m, const std::vector<Site> &sites) {
  std::set<uint64_t> seen;
  for (const Site &s : sites)
    if (!seen.insert(s.id).second)
      errs() << "tiermem-cc: warning: " << m.getSourceFileName()
             << ": two sites hash to the same id 0x"
             << utohexstr(s.id) << " (" << s.where.file << ":"
             << s.where.line << "): the runtime will merge them\n";
}

static void print_summary(const Module &m, const Summary &sum,
                          const Wrappers &w) {
  errs() << "tiermem-cc: " << m.getSourceFileName() << ": rewrote";
  unsigned total = 0;
  for (auto &k : sum.by_kind) {
    errs() << " " << k.first << " " << k.second;
    total += k.second;
  }
  if (!total)
    errs() << " no allocation calls";
  errs() << "; " << sum.wrapper_calls << " wrapper calls; "
         << sum.external_wrapper_calls << " calls of other files' wrappers";
  if (sum.external_invokes_left)
    errs() << " (" << sum.external_invokes_left
           << " invokes with funclet unwinding left alone)";
  errs() << "; " << sum.through_pointers << " calls through pointers left alone; "
         << w.found.size() << " wrappers";
  const char *sep = ": ";
  for (Function &f : *const_cast<Module *>(&m))
    if (w.found.count(&f)) {
      errs() << sep << f.getName() << (w.named.count(&f) ? " (named)" : "");
      sep = ", ";
    }
  errs() << "\n";
}

/* The wrapper tiermem-cc added -gline-tables-only for the locations only
 * (the user asked for no debug info): take it back out once read. */
static void drop_borrowed_debug_info(Module &m) {
  if (env_set("TIERMEM_CC_DROP_DEBUG"))
    StripDebugInfo(m);
}

class TiermemPass : public PassInfoMixin<TiermemPass> {
public:
  PreservedAnalyses run(Module &m, ModuleAnalysisManager &) {
    if (module_has_site_note(m))
      return PreservedAnalyses::all(); /* run twice (LTO): once is enough */
    bool verbose = env_set("TIERMEM_CC_VERBOSE");
    Wrappers w = find_and_clone_wrappers(m, verbose);
    for (const std::string &warning : w.warnings)
      errs() << "tiermem-cc: warning: " << m.getSourceFileName() << ": "
             << warning << "\n";
    std::string root = site_root();
    std::string module_file = module_source_file(m);
    SiteNumbering numbers;
    std::vector<Site> sites;
    Summary sum;
    std::vector<Function *> originals;
    for (Function &f : m)
      if (!f.isDeclaration() && !is_wrapper_clone(f))
        originals.push_back(&f);
    for (Function *f : originals)
      rewrite_function(*f, w, root, module_file, numbers, sites, sum);
    drop_unused_clones(w);
    warn_duplicate_ids(m, sites);
    if (!sites.empty())
      emit_site_note(m, sites);
    if (verbose)
      print_summary(m, sum, w);
    drop_borrowed_debug_info(m);
    return sites.empty() && w.clone_of.empty() ? PreservedAnalyses::all()
                                               : PreservedAnalyses::none();
  }
  /* -O0 marks every function optnone: the pass must run anyway */
  static bool isRequired() { return true; }
};

} // namespace
} // namespace tiermem

/* PipelineStart runs at every level, -O0 included (LLVM 14 and 16), once
 * per module, before inlining. */
extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, "tiermem", "1", [](PassBuilder &pb) {
            pb.registerPipelineStartEPCallback(
                [](ModulePassManager &mpm, OptimizationLevel) {
                  mpm.addPass(tiermem::TiermemPass());
                });
          }};
}
