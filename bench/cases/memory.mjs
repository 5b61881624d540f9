// Foundation figures: metadata bytes per page, machine creation, order-0 alloc + free.
import { median, nsPerOp } from '../lib.mjs';

export async function run(core) {
  const { createMachine, GFP, allocPages, putPage } = core;
  const out = [];

  const m16 = createMachine({ memory: '16G', contents: false });
  out.push({
    id: 'metadata_bytes_per_page',
    value: m16.mem.pages.metadataBytesPerPage(),
    unit: 'bytes',
    target: 32,
  });

  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    createMachine({ memory: '32G', contents: false });
    times.push(performance.now() - t0);
  }
  out.push({ id: 'machine_create_32g_ms', value: median(times), unit: 'ms', target: 1000 });

  // A machine in use: every other page allocated, so order-0 free blocks exist and a pair
  // is one list removal and one insertion (what the kernel's per-CPU lists give it).
  const m = createMachine({ memory: '1G', contents: false });
  const mem = m.mem;
  const all = [];
  for (let p = allocPages(mem, GFP.KERNEL, 0); p >= 0; p = allocPages(mem, GFP.KERNEL, 0))
    all.push(p);
  for (const p of all) if (p % 2 === 0) putPage(mem, p);
  const pair = (n) => {
    for (let i = 0; i < n; i++) putPage(mem, allocPages(mem, GFP.KERNEL, 0));
  };
  out.push({ id: 'alloc_free_order0_ns', value: nsPerOp(pair, 200_000), unit: 'ns', target: 150 });

  // Informational: on an empty machine each pair splits an order-10 block and merges it back
  // (mops has no per-CPU lists to absorb this).
  const e = createMachine({ memory: '1G', contents: false }).mem;
  const split = (n) => {
    for (let i = 0; i < n; i++) putPage(e, allocPages(e, GFP.KERNEL, 0));
  };
  out.push({ id: 'alloc_free_order0_split_ns', value: nsPerOp(split, 100_000), unit: 'ns' });
  return out;
}
