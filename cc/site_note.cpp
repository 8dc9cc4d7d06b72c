/* site_note.cpp -- the module's site table as one ELF note in section
 * ".note.tiermem".
 *
 * A note section is SHF_ALLOC and SHT_NOTE, so linkers keep it (also
 * under --gc-sections) and put it in a PT_NOTE segment: the runtime finds
 * every object's sites through dl_iterate_phdr with no file reading, and
 * `readelf -n` shows them as notes of owner "tiermem".  Layout (all
 * little-endian, doc/compiler.md):
 *   u32 namesz = 8, u32 descsz, u32 type = 0x544d0001, "tiermem\0",
 *   desc: u32 version = 1, u32 nsites, u32 strtab_off, u32 strtab_size,
 *         nsites x { u64 id; u32 file, function, callee, chain, line,
 *                    column }  (strings are strtab offsets),
 *         strtab (offset 0 is ""), padded to 4 bytes. */
#include "tiermem_pass.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

using namespace llvm;

namespace tiermem {

static const char note_global[] = "__tiermem_site_note";
static const uint32_t note_type = 0x544d0001;
static const uint32_t note_version = 1;

namespace {

class Bytes {
public:
  void u32(uint32_t v) {
    for (int i = 0; i < 4; i++)
      data.push_back((uint8_t)(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    u32((uint32_t)v);
    u32((uint32_t)(v >> 32));
  }
  void raw(const std::string &s) { data.insert(data.end(), s.begin(), s.end()); }
  void pad4() {
    while (data.size() % 4)
      data.push_back(0);
  }
  std::vector<uint8_t> data;
};

/* Each distinct string once; offset 0 is the empty string. */
class StringTable {
public:
  StringTable() { text_.push_back('\0'); }
  uint32_t add(const std::string &s) {
    if (s.empty())
      return 0;
    auto it = offsets_.find(s);
    if (it != offsets_.end())
      return it->second;
    uint32_t off = (uint32_t)text_.size();
    text_ += s;
    text_.push_back('\0');
    offsets_[s] = off;
    return off;
  }
  const std::string &text() const { return text_; }

private:
  std::string text_;
  std::map<std::string, uint32_t> offsets_;
};

} // namespace

static std::vector<uint8_t> note_desc(const std::vector<Site> &sites) {
  StringTable strings;
  Bytes records;
  for (const Site &s : sites) {
    records.u64(s.id);
    records.u32(strings.add(s.where.file));
    records.u32(strings.add(s.where.function));
    records.u32(strings.add(s.callee));
    records.u32(strings.add(s.chain));
    records.u32(s.where.line);
    records.u32(s.where.column);
  }
  Bytes desc;
  const uint32_t header = 16;
  desc.u32(note_version);
  desc.u32((uint32_t)sites.size());
  desc.u32(header + (uint32_t)records.data.size());
  desc.u32((uint32_t)strings.text().size());
  desc.data.insert(desc.data.end(), records.data.begin(), records.data.end());
  desc.raw(strings.text());
  return desc.data;
}

void emit_site_note(Module &m, const std::vector<Site> &sites) {
  std::vector<uint8_t> desc = note_desc(sites);
  Bytes note;
  note.u32(8);
  note.u32((uint32_t)desc.size());
  note.u32(note_type);
  note.raw(std::string("tiermem\0", 8));
  note.data.insert(note.data.end(), desc.begin(), desc.end());
  note.pad4();

  Constant *init = ConstantDataArray::get(m.getContext(), note.data);
  auto *gv = new GlobalVariable(m, init->getType(), /*isConstant=*/true,
                                GlobalValue::PrivateLinkage, init,
                                note_global);
  gv->setSection(".note.tiermem");
  gv->setAlignment(Align(4));
  /* Private and unreferenced: only llvm.compiler.used keeps it to the
   * object file. */
  appendToCompilerUsed(m, {gv});
}

bool module_has_site_note(const Module &m) {
  return m.getNamedGlobal(note_global) != nullptr;
}

} // namespace tiermem
