import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bufferIo, main } from '../packages/cli/src/index.js';

const samples = fileURLToPath(new URL('../packages/core/test/proc/fixtures/', import.meta.url));

async function mops(...args: string[]) {
  const io = bufferIo();
  const code = await main(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('the mops command', () => {
  it('mops demo fragments a machine and reports it in kernel formats, deterministically', async () => {
    const a = await mops('demo', '--seed', '3');
    expect(a.code).toBe(0);
    expect(a.out).toContain('/proc/buddyinfo after boot');
    expect(a.out).toMatch(/Node 0, zone\s+DMA32(\s+\d+){11}/);
    expect(a.out).toMatch(/^pgalloc_dma32 \d+$/m);
    expect(a.out).toContain('What happened');
    expect((await mops('demo', '--seed', '3')).out).toBe(a.out);
    expect((await mops('demo', '--seed', '4')).out).not.toBe(a.out);
  });

  it('mops proc buddyinfo --from-proc prints a real machine buddyinfo back, line for line', async () => {
    const r = await mops('proc', 'buddyinfo', '--from-proc', samples);
    expect(r.code).toBe(0);
    expect(r.out).toBe(readFileSync(`${samples}/buddyinfo`, 'utf8'));
  });

  it('mops proc pagetypeinfo --from-proc reproduces the free and block counts', async () => {
    const r = await mops('proc', 'pagetypeinfo', '--from-proc', samples);
    expect(r.out).toBe(readFileSync(`${samples}/pagetypeinfo`, 'utf8'));
  });

  it('mops proc vmstat after a workload counts the allocations', async () => {
    const r = await mops('proc', 'vmstat', '--memory', '64M', '--workload', 'churn');
    expect(r.code).toBe(0);
    expect(Number(/^pgalloc_dma32 (\d+)$/m.exec(r.out)?.[1])).toBeGreaterThan(0);
  });

  it.each([
    [['proc', 'nosuchview'], /known/],
    [['demo', '--memory', '3M'], /multiple of a pageblock/],
    [['demo', '--seed', 'x'], /--seed must be an integer/],
    [['proc', 'buddyinfo', '--profile', 'v9'], /unknown profile 'v9'/],
    [['proc', 'buddyinfo', '--workload', 'nope'], /--workload must be none or churn/],
    [['frobnicate'], /unknown command/],
  ])('usage errors exit 2 with a message, no stack trace: %j', async (args, msg) => {
    const r = await mops(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
