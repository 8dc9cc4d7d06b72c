/* alloc_calls.cpp -- the allocation functions the pass knows, and the
 * rewrite of one call to its tm_cc_* replacement.
 *
 * Every replacement takes the site id first, then a prefix of the
 * original arguments (the nothrow_t& of nothrow new is dropped: the
 * replacement's name says it).  The call is rebuilt from scratch rather
 * than mutated, so none of the original's attributes (allocsize, builtin,
 * nonnull from operator new) carry over to a callee LLVM knows nothing
 * about; LLVM must not treat tm_cc_* as malloc and fold it away. */
#include "tiermem_pass.h"

#include <cstring>

#include "llvm/IR/Constants.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/Instructions.h"

using namespace llvm;

namespace tiermem {

static const AllocKind kinds[] = {
    {"malloc", "tm_cc_malloc", 1, 1, true},
    {"calloc", "tm_cc_calloc", 2, 2, true},
    {"realloc", "tm_cc_realloc", 2, 2, true},
    {"reallocarray", "tm_cc_reallocarray", 3, 3, true},
    {"posix_memalign", "tm_cc_posix_memalign", 3, 3, false},
    {"aligned_alloc", "tm_cc_aligned_alloc", 2, 2, true},
    {"memalign", "tm_cc_memalign", 2, 2, true},
    {"valloc", "tm_cc_valloc", 1, 1, true},
    {"strdup", "tm_cc_strdup", 1, 1, true},
    {"strndup", "tm_cc_strndup", 2, 2, true},
    {"_Znwm", "tm_cc_new", 1, 1, true},
    {"_Znam", "tm_cc_new_array", 1, 1, true},
    {"_ZnwmRKSt9nothrow_t", "tm_cc_new_nothrow", 2, 1, true},
    {"_ZnamRKSt9nothrow_t", "tm_cc_new_array_nothrow", 2, 1, true},
    {"_ZnwmSt11align_val_t", "tm_cc_new_aligned", 2, 2, true},
    {"_ZnamSt11align_val_t", "tm_cc_new_array_aligned", 2, 2, true},
    {"_ZnwmSt11align_val_tRKSt9nothrow_t", "tm_cc_new_aligned_nothrow", 3, 2,
     true},
    {"_ZnamSt11align_val_tRKSt9nothrow_t", "tm_cc_new_array_aligned_nothrow",
     3, 2, true},
};

/* Flang 16 lowers ALLOCATE of a derived type (with or without allocatable
 * components, scalar or array) and of a polymorphic or SOURCE= object to
 * these, which malloc inside libFortranRuntime.a: an uninstrumented library
 * where every such malloc would share one stack-keyed site.  ALLOCATE of an
 * intrinsic-type array is an inline malloc, rewritten as in C.  The
 * prototypes are flang 16's (flang/include/flang/Runtime/allocatable.h,
 * pointer.h): (descriptor, [source,] hasStat, errMsg, sourceFile,
 * sourceLine). */
static const AnnouncedKind announced[] = {
    {"_FortranAAllocatableAllocate", 5, 4},
    {"_FortranAAllocatableAllocateSource", 6, 5},
    {"_FortranAPointerAllocate", 5, 4},
    {"_FortranAPointerAllocateSource", 6, 5},
};

Function *direct_callee(const CallBase &call) {
  return dyn_cast<Function>(call.getCalledOperand()->stripPointerCasts());
}

/* A user's own odd prototype of "malloc" (K&R, wrong arity) is not the
 * C library's: leave such calls alone rather than guess. */
static bool call_fits_kind(const CallBase &call, const AllocKind &kind) {
  FunctionType *type = call.getFunctionType();
  if (type->isVarArg() || type->getNumParams() != kind.nparams)
    return false;
  Type *ret = type->getReturnType();
  return kind.returns_pointer ? ret->isPointerTy() : ret->isIntegerTy(32);
}

const AllocKind *alloc_kind_of(const CallBase &call) {
  Function *callee = direct_callee(call);
  if (!callee || !callee->isDeclaration())
    return nullptr;
  StringRef name = callee->getName();
  for (const AllocKind &kind : kinds)
    if (name == kind.callee)
      return call_fits_kind(call, kind) ? &kind : nullptr;
  return nullptr;
}

const AnnouncedKind *announced_kind_of(const CallBase &call) {
  Function *callee = direct_callee(call);
  if (!callee || !callee->isDeclaration())
    return nullptr;
  StringRef name = callee->getName();
  for (const AnnouncedKind &kind : announced) {
    if (name != kind.callee)
      continue;
    FunctionType *type = call.getFunctionType();
    bool fits = !type->isVarArg() && type->getNumParams() == kind.nparams &&
                type->getParamType(kind.line_arg)->isIntegerTy(32);
    return fits ? &kind : nullptr;
  }
  return nullptr;
}

unsigned announced_line(const CallBase &call, const AnnouncedKind &kind) {
  auto *line = dyn_cast<ConstantInt>(call.getArgOperand(kind.line_arg));
  return line && line->getSExtValue() > 0 ? unsigned(line->getZExtValue())
                                          : 0;
}

bool announce_site(CallBase &call, Value *id) {
  /* After an invoke there are two successors to clear the id on; flang
   * emits none (Fortran does not unwind), so leave such calls alone. */
  auto *plain = dyn_cast<CallInst>(&call);
  if (!plain)
    return false;
  Module &m = *call.getModule();
  Type *i64 = Type::getInt64Ty(m.getContext());
  FunctionCallee next = m.getOrInsertFunction(
      "tm_cc_next_site", FunctionType::get(Type::getVoidTy(m.getContext()),
                                           {i64}, /*isVarArg=*/false));
  if (auto *f = dyn_cast<Function>(next.getCallee()))
    f->setDoesNotThrow();
  CallInst *before = CallInst::Create(next, {id}, "", plain);
  before->setDebugLoc(call.getDebugLoc());
  /* Cleared after the call: an ALLOCATE that fails before its malloc (an
   * already allocated object with STAT=) must not hand the id to an
   * unrelated later allocation. */
  CallInst *after = CallInst::Create(next, {ConstantInt::get(i64, 0)});
  after->insertAfter(plain);
  after->setDebugLoc(call.getDebugLoc());
  return true;
}

CallBase *replace_call(CallBase &old, FunctionCallee callee,
                       ArrayRef<Value *> args) {
  SmallVector<OperandBundleDef, 1> bundles;
  old.getOperandBundlesAsDefs(bundles);
  CallBase *fresh;
  if (auto *invoke = dyn_cast<InvokeInst>(&old))
    fresh = InvokeInst::Create(callee, invoke->getNormalDest(),
                               invoke->getUnwindDest(), args, bundles, "",
                               &old);
  else
    fresh = CallInst::Create(callee, args, bundles, "", &old);
  fresh->setDebugLoc(old.getDebugLoc());
  if (old.doesNotThrow())
    fresh->setDoesNotThrow();
  fresh->takeName(&old);
  old.replaceAllUsesWith(fresh);
  old.eraseFromParent();
  return fresh;
}

/* tm_cc_*'s declaration: (i64 id, the passed parameters) -> the original
 * return type, nounwind where the original was, the result noalias (it is
 * a fresh block) and nothing else. */
static FunctionCallee declare_replacement(Module &m, const CallBase &call,
                                          const AllocKind &kind) {
  FunctionType *orig = call.getFunctionType();
  SmallVector<Type *, 4> params{Type::getInt64Ty(m.getContext())};
  for (unsigned i = 0; i < kind.npassed; i++)
    params.push_back(orig->getParamType(i));
  FunctionType *type =
      FunctionType::get(orig->getReturnType(), params, /*isVarArg=*/false);
  FunctionCallee callee = m.getOrInsertFunction(kind.replacement, type);
  if (auto *f = dyn_cast<Function>(callee.getCallee())) {
    Function *original = direct_callee(call);
    if (original && original->doesNotThrow())
      f->setDoesNotThrow();
    if (kind.returns_pointer)
      f->addRetAttr(Attribute::NoAlias);
  }
  return callee;
}

CallBase *rewrite_alloc_call(CallBase &call, const AllocKind &kind,
                             Value *id) {
  Module &m = *call.getModule();
  FunctionCallee callee = declare_replacement(m, call, kind);
  SmallVector<Value *, 4> args{id};
  for (unsigned i = 0; i < kind.npassed; i++)
    args.push_back(call.getArgOperand(i));
  CallBase *fresh = replace_call(call, callee, args);
  if (kind.returns_pointer)
    fresh->addRetAttr(Attribute::NoAlias);
  return fresh;
}

} // namespace tiermem
