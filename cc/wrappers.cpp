/* wrappers.cpp -- allocation wrappers (xmalloc, hypre_CAlloc): found,
 * cloned with a site-id parameter, so each call of a wrapper is a site.
 *
 * A wrapper is either named in TIERMEM_CC_WRAPPERS or found: a function
 * whose every returned value is the result of an allocation call (or of
 * another wrapper, or null), and whose allocation results go nowhere but
 * back out (casts, phis, null checks, the function's own locals).  A
 * function that stores into the block (a constructor like new_node) is no
 * wrapper: its calls are one site, the one inside it.  The pass runs on
 * unoptimized IR, where values pass through allocas: the walks follow
 * stores to and loads from a function's own allocas.
 *
 * Each wrapper W gets a clone W.tm_site(i64 id, W's parameters) whose
 * allocation calls take that id and whose calls of other wrappers pass it
 * on, so wrappers calling wrappers resolve to the outermost call within
 * the module.  The original W keeps its own sites for calls from other
 * files and through pointers. */
#include "tiermem_pass.h"

#include <cstdlib>

#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/Cloning.h"

using namespace llvm;

namespace tiermem {

static const char clone_suffix[] = ".tm_site";

bool is_wrapper_clone(const Function &f) {
  return f.getName().endswith(clone_suffix);
}

namespace {

/* One function's wrapper test against the wrappers known so far. */
class WrapperShape {
public:
  WrapperShape(const std::set<Function *> &known,
               const std::set<Function *> &external)
      : known_(known), external_(external) {}

  bool matches(Function &f) {
    bool any_alloc = false;
    for (BasicBlock &bb : f)
      if (auto *ret = dyn_cast<ReturnInst>(bb.getTerminator()))
        if (!returns_allocation(ret->getReturnValue(), any_alloc))
          return false;
    return any_alloc;
  }

private:
  bool is_allocation(const Value *v) const {
    auto *call = dyn_cast<CallBase>(v);
    if (!call)
      return false;
    if (const AllocKind *kind = alloc_kind_of(*call))
      return kind->returns_pointer;
    Function *callee = direct_callee(*call);
    return callee && (known_.count(callee) || external_.count(callee));
  }

  /* Every value `v` can be comes from an allocation (or is null), and
   * every such allocation's uses stay inside. */
  bool returns_allocation(Value *v, bool &any_alloc) {
    if (!v || !v->getType()->isPointerTy())
      return false;
    if (!sources_.insert(v).second)
      return true; /* already on the walk: a phi cycle */
    v = v->stripPointerCasts();
    if (isa<ConstantPointerNull>(v))
      return true;
    if (is_allocation(v)) {
      any_alloc = true;
      return uses_stay_inside(v);
    }
    if (auto *phi = dyn_cast<PHINode>(v)) {
      for (Value *in : phi->incoming_values())
        if (!returns_allocation(in, any_alloc))
          return false;
      return true;
    }
    if (auto *sel = dyn_cast<SelectInst>(v))
      return returns_allocation(sel->getTrueValue(), any_alloc) &&
             returns_allocation(sel->getFalseValue(), any_alloc);
    if (auto *load = dyn_cast<LoadInst>(v))
      if (auto *slot = dyn_cast<AllocaInst>(load->getPointerOperand()))
        return local_holds_allocation(slot, any_alloc);
    return false;
  }

  /* Every store into a local is an allocation; posix_memalign(&local)
   * counts as one. */
  bool local_holds_allocation(AllocaInst *slot, bool &any_alloc) {
    for (User *u : slot->users()) {
      if (auto *store = dyn_cast<StoreInst>(u)) {
        if (store->getPointerOperand() != slot ||
            !returns_allocation(store->getValueOperand(), any_alloc))
          return false;
      } else if (auto *call = dyn_cast<CallBase>(u)) {
        const AllocKind *kind = alloc_kind_of(*call);
        if (kind && !kind->returns_pointer && call->getArgOperand(0) == slot)
          any_alloc = true;
        else if (!isa<IntrinsicInst>(call)) /* lifetime, dbg */
          return false;
      } else if (!isa<LoadInst>(u)) {
        return false;
      }
    }
    return true;
  }

  /* The block goes only back out: returned, compared, cast, merged, or
   * kept in a local that is only read back. */
  bool uses_stay_inside(Value *v) {
    if (!uses_.insert(v).second)
      return true;
    for (User *u : v->users()) {
      if (isa<ReturnInst>(u) || isa<ICmpInst>(u))
        continue;
      if (isa<CastInst>(u) || isa<PHINode>(u) || isa<SelectInst>(u)) {
        if (!uses_stay_inside(u))
          return false;
        continue;
      }
      if (auto *store = dyn_cast<StoreInst>(u)) {
        auto *slot = dyn_cast<AllocaInst>(store->getPointerOperand());
        if (!slot || store->getValueOperand() != v || !loads_stay_inside(slot))
          return false;
        continue;
      }
      if (auto *call = dyn_cast<IntrinsicInst>(u))
        if (call->isLifetimeStartOrEnd() || isa<DbgInfoIntrinsic>(call))
          continue;
      return false;
    }
    return true;
  }

  bool loads_stay_inside(AllocaInst *slot) {
    for (User *u : slot->users())
      if (auto *load = dyn_cast<LoadInst>(u))
        if (!uses_stay_inside(load))
          return false;
    return true;
  }

  const std::set<Function *> &known_, &external_;
  SmallPtrSet<Value *, 16> sources_, uses_;
};

} // namespace

static bool can_be_wrapper(const Function &f) {
  return !f.isDeclaration() && !f.isVarArg() && !is_wrapper_clone(f) &&
         f.getReturnType()->isPointerTy();
}

/* Found wrappers, to a fixed point: a function that returns another
 * wrapper's result (one of this file, or one named in another) is one
 * too. */
static void detect_wrappers(Module &m, std::set<Function *> &found,
                            const std::set<Function *> &external) {
  bool grew = true;
  while (grew) {
    grew = false;
    for (Function &f : m) {
      if (found.count(&f) || !can_be_wrapper(f))
        continue;
      WrapperShape shape(found, external);
      if (shape.matches(f)) {
        found.insert(&f);
        grew = true;
      }
    }
  }
}

static std::vector<std::string> split_names(const char *list) {
  std::vector<std::string> names;
  std::string cur;
  for (const char *p = list; ; p++) {
    if (*p == ',' || *p == '\0') {
      if (!cur.empty())
        names.push_back(cur);
      cur.clear();
      if (!*p)
        break;
    } else if (*p != ' ') {
      cur.push_back(*p);
    }
  }
  return names;
}

/* TIERMEM_CC_WRAPPERS: a name this file defines becomes a wrapper; one it
 * only declares is defined in another file: its calls here are bracketed
 * with the thread's wrapper context (bracket_wrapper_call).  A
 * name the module does not mention at all is reported only in verbose
 * mode, else every file of a program would warn about every wrapper. */
static void named_wrappers(Module &m, Wrappers &w, bool verbose) {
  const char *list = std::getenv("TIERMEM_CC_WRAPPERS");
  if (!list)
    return;
  for (const std::string &name : split_names(list)) {
    Function *f = m.getFunction(name);
    if (!f) {
      if (verbose)
        w.warnings.push_back("TIERMEM_CC_WRAPPERS names " + name +
                             ", which this file does not mention");
      continue;
    }
    if (f->isDeclaration()) {
      if (f->getReturnType()->isPointerTy())
        w.external.insert(f);
      else
        w.warnings.push_back("TIERMEM_CC_WRAPPERS names " + name +
                             ", which returns no pointer: not a wrapper");
      continue;
    }
    if (f->isVarArg()) {
      w.warnings.push_back("TIERMEM_CC_WRAPPERS names " + name +
                           ", a variadic function: not cloned");
      continue;
    }
    w.found.insert(f);
    w.named.insert(f);
  }
}

static Function *clone_with_id(Function &f) {
  LLVMContext &ctx = f.getContext();
  SmallVector<Type *, 8> params{Type::getInt64Ty(ctx)};
  for (Type *t : f.getFunctionType()->params())
    params.push_back(t);
  FunctionType *type = FunctionType::get(f.getReturnType(), params, false);
  Function *clone = Function::Create(type, GlobalValue::InternalLinkage,
                                     f.getName() + clone_suffix, f.getParent());
  ValueToValueMapTy vmap;
  auto arg = clone->arg_begin();
  arg->setName("tm_site_id");
  for (Argument &a : f.args()) {
    ++arg;
    arg->setName(a.getName());
    vmap[&a] = &*arg;
  }
  SmallVector<ReturnInst *, 4> returns;
  CloneFunctionInto(clone, &f, vmap, CloneFunctionChangeType::LocalChangesOnly,
                    returns);
  /* the original's comdat and visibility belong to it alone */
  clone->setComdat(nullptr);
  clone->setVisibility(GlobalValue::DefaultVisibility);
  return clone;
}

/* Inside a clone, every allocation and wrapper call gets the clone's id. */
static void pass_id_down(Function &clone, const Wrappers &w) {
  Value *id = clone.getArg(0);
  std::vector<CallBase *> calls;
  for (BasicBlock &bb : clone)
    for (Instruction &i : bb)
      if (auto *call = dyn_cast<CallBase>(&i))
        calls.push_back(call);
  for (CallBase *call : calls) {
    if (const AllocKind *kind = alloc_kind_of(*call)) {
      rewrite_alloc_call(*call, *kind, id);
      continue;
    }
    Function *callee = direct_callee(*call);
    if (callee && w.external.count(callee)) {
      bracket_wrapper_call(*call, id);
      continue;
    }
    auto it = callee ? w.clone_of.find(callee) : w.clone_of.end();
    if (it == w.clone_of.end())
      continue;
    SmallVector<Value *, 8> args{id};
    for (Value *a : call->args())
      args.push_back(a);
    replace_call(*call, it->second, args);
  }
}

/* "w>inner>malloc": what a call of w ends in (several ends joined by |). */
static std::string chain_text(Function *f, Wrappers &w,
                              std::set<Function *> &on_path) {
  auto done = w.chain.find(f);
  if (done != w.chain.end())
    return done->second;
  if (!on_path.insert(f).second)
    return std::string(f->getName()); /* recursion */
  std::set<std::string> ends;
  for (BasicBlock &bb : *f)
    for (Instruction &i : bb) {
      auto *call = dyn_cast<CallBase>(&i);
      if (!call)
        continue;
      if (const AllocKind *kind = alloc_kind_of(*call))
        ends.insert(kind->callee);
      else if (Function *callee = direct_callee(*call)) {
        if (w.found.count(callee))
          ends.insert(chain_text(callee, w, on_path));
        else if (w.external.count(callee)) /* its inside: unknown here */
          ends.insert(std::string(callee->getName()));
      }
    }
  std::string text(f->getName());
  std::string joined;
  for (const std::string &e : ends)
    joined += (joined.empty() ? "" : "|") + e;
  if (!joined.empty())
    text += ">" + joined;
  on_path.erase(f);
  w.chain[f] = text;
  return text;
}

Wrappers find_and_clone_wrappers(Module &m, bool verbose) {
  Wrappers w;
  named_wrappers(m, w, verbose);
  detect_wrappers(m, w.found, w.external);
  /* module order, not pointer order: the object must not change from one
   * compile to the next */
  std::vector<Function *> ordered;
  for (Function &f : m)
    if (w.found.count(&f))
      ordered.push_back(&f);
  for (Function *f : ordered) {
    std::set<Function *> on_path;
    chain_text(f, w, on_path);
  }
  /* clone every original first, then rewrite the clones: a clone must be
   * made from a body no rewrite has touched */
  for (Function *f : ordered)
    w.clone_of[f] = clone_with_id(*f);
  for (Function *f : ordered)
    pass_id_down(*w.clone_of[f], w);
  return w;
}

/* ------------------------------------------------ wrappers in other files */

static FunctionCallee wrap_entry(Module &m, const char *name, Type *ret) {
  Type *i64 = Type::getInt64Ty(m.getContext());
  FunctionCallee fc =
      m.getOrInsertFunction(name, FunctionType::get(ret, {i64}, false));
  if (auto *f = dyn_cast<Function>(fc.getCallee()))
    f->setDoesNotThrow();
  return fc;
}

static void leave_at(FunctionCallee leave, Value *prev, Instruction *before,
                     const DebugLoc &loc) {
  CallInst *c = CallInst::Create(leave, {prev}, "", before);
  c->setDebugLoc(loc);
}

bool bracket_wrapper_call(CallBase &call, Value *id) {
  Module &m = *call.getModule();
  LLVMContext &ctx = m.getContext();
  auto *invoke = dyn_cast<InvokeInst>(&call);
  if (invoke && !isa<LandingPadInst>(invoke->getUnwindDest()->getFirstNonPHI()))
    return false; /* funclet EH (catchswitch, cleanuppad): not handled */
  FunctionCallee enter =
      wrap_entry(m, "tm_cc_wrap_enter", Type::getInt64Ty(ctx));
  FunctionCallee leave = wrap_entry(m, "tm_cc_wrap_leave", Type::getVoidTy(ctx));
  const DebugLoc &loc = call.getDebugLoc();
  CallInst *prev = CallInst::Create(enter, {id}, "tm.wrap.prev", &call);
  prev->setDebugLoc(loc);
  if (!invoke) {
    leave_at(leave, prev, call.getNextNode(), loc);
    return true;
  }
  /* each edge leads to a block only the invoke enters, so prev dominates
   * the leave there and no other path runs it */
  BasicBlock *from = invoke->getParent();
  BasicBlock *dest = invoke->getNormalDest();
  if (dest->getSinglePredecessor() != from) {
    BasicBlock *mid = BasicBlock::Create(ctx, "tm.wrap.ret", from->getParent(),
                                         dest);
    BranchInst::Create(dest, mid);
    invoke->setNormalDest(mid);
    dest->replacePhiUsesWith(from, mid);
    dest = mid;
  }
  leave_at(leave, prev, &*dest->getFirstInsertionPt(), loc);
  BasicBlock *pad = invoke->getUnwindDest();
  if (pad->getSinglePredecessor() != from) {
    SmallVector<BasicBlock *, 2> pads;
    SplitLandingPadPredecessors(pad, {from}, ".tm.wrap", ".tm.other", pads);
    pad = pads[0];
  }
  leave_at(leave, prev, &*pad->getFirstInsertionPt(), loc);
  return true;
}

} // namespace tiermem
