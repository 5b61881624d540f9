import { describe, expect, it } from 'vitest';
import { TRACE_EVENT_NAMES, TraceBus } from '../../src/trace/index.js';

const alloc = { pfn: 1, order: 0, gfp_flags: 0, migratetype: 0 };

describe('TraceBus.enabled', () => {
  it('starts false for every event and has every name as a key', () => {
    const bus = new TraceBus();
    expect(Object.keys(bus.enabled).sort()).toEqual([...TRACE_EVENT_NAMES].sort());
    expect(Object.values(bus.enabled).every((v) => v === false)).toBe(true);
  });

  it('tracks on/addListener/off/removeListener per event', () => {
    const bus = new TraceBus();
    const a = () => {};
    const b = () => {};
    bus.on('mm_page_alloc', a);
    expect(bus.enabled.mm_page_alloc).toBe(true);
    expect(bus.enabled.mm_page_free).toBe(false);
    bus.addListener('mm_page_alloc', b);
    bus.off('mm_page_alloc', a);
    expect(bus.enabled.mm_page_alloc).toBe(true);
    bus.removeListener('mm_page_alloc', b);
    expect(bus.enabled.mm_page_alloc).toBe(false);
    bus.off('mm_page_alloc', b); // removing twice is harmless
    expect(bus.enabled.mm_page_alloc).toBe(false);
  });

  it('tracks removeAllListeners for one event and for all', () => {
    const bus = new TraceBus();
    bus.on('mm_page_alloc', () => {});
    bus.on('mm_page_free', () => {});
    bus.removeAllListeners('mm_page_free');
    expect([bus.enabled.mm_page_alloc, bus.enabled.mm_page_free]).toEqual([true, false]);
    bus.on('mm_page_alloc_extfrag', () => {});
    bus.removeAllListeners();
    expect(Object.values(bus.enabled).some((v) => v)).toBe(false);
  });

  it('turns off after a once listener ran, whether fired or emitted', () => {
    const bus = new TraceBus();
    let n = 0;
    bus.once('mm_page_alloc', () => n++);
    expect(bus.enabled.mm_page_alloc).toBe(true);
    expect(bus.fire('mm_page_alloc', alloc)).toBe(true);
    expect(bus.fire('mm_page_alloc', alloc)).toBe(false);
    expect(n).toBe(1);
    expect(bus.enabled.mm_page_alloc).toBe(false);
    bus.once('mm_page_free', () => n++);
    bus.emit('mm_page_free', { pfn: 1, order: 0 });
    expect(bus.enabled.mm_page_free).toBe(false);
    expect(n).toBe(2);
  });
});

describe('TraceBus.fire', () => {
  it('a throwing listener does not stop the others and is recorded', () => {
    const bus = new TraceBus();
    const seen: string[] = [];
    bus.on('mm_page_alloc', () => seen.push('first'));
    bus.on('mm_page_alloc', () => {
      throw new Error('listener bug');
    });
    bus.on('mm_page_alloc', (e) => seen.push(`third ${e.pfn}`));
    expect(() => bus.fire('mm_page_alloc', alloc)).not.toThrow();
    expect(seen).toEqual(['first', 'third 1']);
    expect(bus.listenerErrors).toHaveLength(1);
    expect(bus.listenerErrors[0].event).toBe('mm_page_alloc');
    expect((bus.listenerErrors[0].error as Error).message).toBe('listener bug');
    // The emitter keeps working.
    bus.fire('mm_page_alloc', { ...alloc, pfn: 2 });
    expect(seen).toEqual(['first', 'third 1', 'first', 'third 2']);
    expect(bus.listenerErrors).toHaveLength(2);
  });

  it('a single throwing listener is recorded too', () => {
    const bus = new TraceBus();
    bus.on('mm_page_free', () => {
      throw new Error('x');
    });
    expect(bus.fire('mm_page_free', { pfn: 3, order: 1 })).toBe(true);
    expect(bus.listenerErrors).toHaveLength(1);
  });

  it('returns false without listeners, passes the context, and tolerates changes while firing', () => {
    const bus = new TraceBus();
    expect(bus.fire('mm_page_alloc', alloc)).toBe(false);
    const ctx = { hits: 0 };
    const late = () => {
      ctx.hits += 100;
    };
    bus.on(
      'mm_page_alloc',
      function (this: typeof ctx) {
        this.hits++;
        bus.on('mm_page_alloc', late); // added during a fire: runs from the next fire on
      },
      ctx,
    );
    bus.on('mm_page_alloc', () => {});
    bus.fire('mm_page_alloc', alloc);
    expect(ctx.hits).toBe(1);
    bus.off('mm_page_alloc', late);
    expect(bus.enabled.mm_page_alloc).toBe(true);
  });
});
