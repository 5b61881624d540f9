import { MmBug, MopsError, PAGE_SIZE } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { HOST_POISON, Hypervisor, VirtioBalloon } from '../src/index.js';
import { expectClean, machine, run, withBalloon } from './helpers.js';

describe('hypervisor model', () => {
  it("a host of another machine is refused, and that machine's pages are left alone", () => {
    const m1 = machine('v6.3');
    const m2 = machine('v6.3');
    const host = new Hypervisor(m2);
    expect(() => new VirtioBalloon(m1, { hypervisor: host })).toThrow(
      expect.objectContaining({ code: 'E_USAGE', field: 'hypervisor' }),
    );
    expect(host.stats.pagesInflated).toBe(0);
    expect(new VirtioBalloon(m2, { hypervisor: host }).host).toBe(host);
  });

  it('inflated pages belong to the host: they read as poison and come back zeroed', () => {
    const { m, vb, dev } = withBalloon('v6.3', 2);
    const [a] = dev.listPages();
    const data = m.mem.pages.pageData(a);
    expect(data.every((b) => b === HOST_POISON)).toBe(true);
    expect(vb.host.verify()).toEqual([]);
    run(m, () => vb.leak(2));
    expect(m.mem.pages.pageData(a).every((b) => b === 0)).toBe(true);
    expect(vb.host.stats).toMatchObject({
      pagesInflated: 2,
      pagesDeflated: 2,
      inflateRequests: 1,
      deflateRequests: 1,
    });
  });

  it('a guest write to an inflated page is a kernel BUG', () => {
    const { m, vb, dev } = withBalloon('v6.3', 1);
    const [a] = dev.listPages();
    expect(() => vb.host.guestWrite(a, 8, [1, 2, 3])).toThrow(MmBug);
    expect(m.mem.halted?.reason).toMatch(/guest write to an inflated page/);
  });

  it("a write behind the host's back is caught when the page is deflated", () => {
    const { m, vb, dev } = withBalloon('v6.17', 1);
    const [a] = dev.listPages();
    m.mem.pages.contents![a * PAGE_SIZE + 100] = 7;
    expect(() => run(m, () => vb.leak(1))).toThrow(/wrote to an inflated page \(offset 100\)/);
  });

  it('verify() finds a modified inflated page too', () => {
    const { m, vb, dev } = withBalloon('v4.8', 1);
    const [a] = dev.listPages();
    m.mem.pages.pageData(a)[4095] = 0;
    expect(() => vb.host.verify()).toThrow(MmBug);
  });

  it('writes to pages the host does not hold are plain writes', () => {
    const { m, vb } = withBalloon('v6.0', 0);
    const pfn = m.allocPages(0, 0);
    vb.host.guestWrite(pfn, 10, [9, 9]);
    expect(Array.from(m.mem.pages.pageData(pfn).subarray(10, 12))).toEqual([9, 9]);
    expect(() => vb.host.guestWrite(pfn, 4095, [1, 2])).toThrow(MopsError);
    expect(() => vb.host.guestWrite(-1)).toThrow(MopsError);
  });

  it('a host at its limit refuses; refused pages are freed, counted and shown', () => {
    const { m, vb } = withBalloon('v6.3', 0, { hypervisorOptions: { limit: 5 } });
    expect(run(m, () => vb.fill(8))).toBe(5);
    expect(vb.stats.refusedPages).toBe(3);
    expect(vb.host.stats.refused).toBe(3);
    expect(vb.numPages).toBe(5);
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(5);
    expectClean(m);
    expect(run(m, () => vb.fill(1))).toBe(0);
    expect(vb.stats.refusedPages).toBe(4);
  });

  it("a host that may refuse gets vmw_balloon's fill order: told first, nothing enqueued until it answers", () => {
    const { m, vb, dev } = withBalloon('v6.3', 0, {
      hypervisorOptions: { latency: 1, refuse: (pfn) => pfn % 2 === 1 },
    });
    expect(vb.host.mayRefuse).toBe(true);
    m.sched.manual = true;
    const fill = m.sched.spawn('fill', () => vb.fill(6));
    m.sched.runUntil(fill, (p) => p.op === 'wait_event(vb->acked)');
    expect(dev.listLength()).toBe(0);
    expect(vb.numPages).toBe(0);
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(0);
    const got = m.sched.runToEnd(fill);
    m.sched.manual = false;
    expect(got).toBe(6 - vb.stats.refusedPages);
    expect(dev.listPages().every((pfn) => pfn % 2 === 0)).toBe(true);
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(got);
    expectClean(m);
  });

  it('only limit, refuseRate above 0 or refuse make a host that may refuse', () => {
    const m = machine('v6.3');
    expect(new Hypervisor(m).mayRefuse).toBe(false);
    expect(new Hypervisor(m, { latency: 2, refuseRate: 0 }).mayRefuse).toBe(false);
    expect(new Hypervisor(m, { limit: 0 }).mayRefuse).toBe(true);
    expect(new Hypervisor(m, { refuseRate: 0.1 }).mayRefuse).toBe(true);
    expect(new Hypervisor(m, { refuse: () => false }).mayRefuse).toBe(true);
  });

  it.each([
    ['refuseRate', { refuseRate: Symbol('r') }, 'Symbol(r)'],
    ['refuseRate', { refuseRate: { r: 1 } }, 'an object'],
    ['latency', { latency: Symbol('l') }, 'Symbol(l)'],
    ['limit', { limit: { l: 1 } }, 'an object'],
  ])('a host option %s of any type is E_RANGE saying what it got (%o)', (field, opts, shown) => {
    const m = machine('v6.3');
    expect(() => new Hypervisor(m, opts as never)).toThrow(
      expect.objectContaining({
        code: 'E_RANGE',
        field,
        message: expect.stringContaining(`got ${shown}`),
      }),
    );
  });

  it('random refusals come from the machine seed: same seed, same outcome', () => {
    const outcome = (seed: number) => {
      const { m, vb } = withBalloon(
        'v6.3',
        0,
        { hypervisorOptions: { refuseRate: 0.5 } },
        { seed },
      );
      run(m, () => vb.fill(64));
      expectClean(m);
      return vb.host.inflatedPfns().join(',');
    };
    expect(outcome(7)).toBe(outcome(7));
    expect(outcome(7)).not.toBe(outcome(8));
  });

  it('a slow host makes tell_host wait `latency` scheduling points', () => {
    const m = machine('v6.3');
    const host = new Hypervisor(m, { latency: 3 });
    m.sched.manual = true;
    const pfn = m.allocPages(0, 0);
    const t = m.sched.spawn('inflate', () => host.tellHost(m, 'inflate', [pfn]));
    const ops: string[] = [];
    while (t.state === 'runnable') ops.push(m.sched.step(t).op);
    expect(ops.filter((o) => o === 'wait_event(vb->acked)')).toHaveLength(3);
    expect(host.isInflated(pfn)).toBe(true);
  });

  it('bad options and protocol errors', () => {
    const m = machine('v6.3');
    expect(() => new Hypervisor(m, { refuseRate: 2 })).toThrow(MopsError);
    expect(() => new Hypervisor(m, { latency: -1 })).toThrow(/latency/);
    expect(() => new Hypervisor(m, { refuse: 3 as never })).toThrow(MopsError);
    const host = new Hypervisor(m);
    const pfn = m.allocPages(0, 0);
    expect(() => host.deflate([pfn])).toThrow(/does not hold/);
    const m2 = machine('v6.3');
    const host2 = new Hypervisor(m2);
    const free = m2.mem.pages.refcount.indexOf(0, 1);
    expect(() => host2.inflate([free])).toThrow(/free page/);
  });
});
