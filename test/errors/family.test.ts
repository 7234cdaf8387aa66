// Every operational error class is a PlexdError: name, a code from its closed set (anything else
// is a TypeError), the cause it was given, errno where the OS gave one, and instanceof that holds
// across two copies of a module.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/agent/config.js';
import { StoreError } from '../../src/agent/store.js';
import { InstallError } from '../../src/cli/install.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { ControlPlaneError, ControlPlaneFileError } from '../../src/control-plane/errors.js';
import { ApiError } from '../../src/control/http-client.js';
import { RegistrationError } from '../../src/control/register.js';
import { DeviceError } from '../../src/device/errors.js';
import { hasCode, OsError, PlexdError, type PlexdErrorOptions } from '../../src/errors.js';
import { BindError, TunError } from '../../src/io/errors.js';
import { TcpError } from '../../src/net/tcp-error.js';
import { NetError } from '../../src/net/net-error.js';
import { PolicyError } from '../../src/policy/policy-error.js';
import { UapiError, UapiSocketError } from '../../src/uapi/errors.js';
import { errorClasses, ownCodes } from '../helpers/error-classes.js';

type Make = (code: string, options: PlexdErrorOptions) => PlexdError;
/** One way to build each class with a given code and cause; `fixed` classes take no code argument. */
const MAKE: Record<string, { make: Make; fixed?: true }> = {
  TunError: { make: (c, o) => new TunError(c as never, 'm', o) },
  BindError: { make: (c, o) => new BindError(c as never, 'm', o) },
  DeviceError: { make: (c, o) => new DeviceError(c as never, 'm', o) },
  UapiError: { make: (c, o) => new UapiError(c as never, 'm', o) },
  UapiSocketError: { make: (c, o) => new UapiSocketError(c as never, 'm', o) },
  ControlPlaneError: { make: (c, o) => new ControlPlaneError(c as never, 'm', o) },
  ControlPlaneFileError: { make: (c, o) => new ControlPlaneFileError(c as never, 'm', o) },
  RegistrationError: { make: (c, o) => new RegistrationError(c as never, 'm', 409, o) },
  PolicyError: { make: (_c, o) => new PolicyError('ports.from', 2, 'm', o), fixed: true },
  ConfigError: { make: (_c, o) => new ConfigError('api.base_url', 'm', o), fixed: true },
  StoreError: { make: (_c, o) => new StoreError('m', o), fixed: true },
  ApiError: { make: (_c, o) => new ApiError('network', 'm', o), fixed: true },
  UsageError: { make: (_c, o) => new UsageError('m', o), fixed: true },
  InstallError: { make: (c, o) => new InstallError(c as never, 'm', o) },
  TcpError: { make: (c, o) => new TcpError(c as never, 'm', o) },
  NetError: { make: (c, o) => new NetError(c as never, 'm', o) },
};

describe('the error family', () => {
  it('has a constructor here for every concrete PlexdError class in src/', async () => {
    const concrete = (await errorClasses()).filter((c) => !c.abstract).map((c) => c.name);
    expect(Object.keys(MAKE).sort()).toEqual(concrete.sort());
  });

  it('each class: name, every code of its set, the cause, instanceof its class and PlexdError', async () => {
    for (const { name, cls } of (await errorClasses()).filter((c) => !c.abstract)) {
      const codes = ownCodes(cls)!;
      const { make, fixed } = MAKE[name]!;
      for (const code of fixed ? codes.slice(0, 1) : codes) {
        const cause = new Error('root');
        const e = make(code, { cause });
        expect({ name: e.name, code: e.code, cause: e.cause }).toEqual({ name, code, cause });
        expect(e instanceof cls && e instanceof PlexdError && e instanceof Error).toBe(true);
        expect(hasCode(e, code)).toBe(true);
      }
      expect(Object.hasOwn(make(codes[0]!, {}), 'cause'), `${name} without a cause has none`).toBe(false);
      if (!fixed) expect(() => make('ERR_NOT_A_CODE', {}), name).toThrow(TypeError);
    }
  });

  it('keeps the messages callers and users match on', () => {
    expect(new PolicyError('ports.from', 2, 'expected 1..65535').message).toBe('rules[2].ports.from: expected 1..65535');
    expect(new PolicyError('version', undefined, 'expected 1').message).toBe('version: expected 1');
    expect(new ConfigError('api.base_url', 'expected a URL').message).toBe('config api.base_url: expected a URL');
    expect(new UsageError('missing --db').message).toBe('missing --db');
    const fields = [{ field: 'x', message: 'bad' }];
    expect(new ControlPlaneError('validation_failed', 'x: bad', { errors: fields }).errors).toBe(fields);
    expect(new ApiError('http', 'm', { status: 409, problemCode: 'token_consumed' })).toMatchObject({ code: 'ERR_API', kind: 'http', status: 409, problemCode: 'token_consumed' });
  });

  it('the classes around a system call share OsError: errno is the OS name, or undefined', () => {
    for (const e of [new TunError('ERR_TUN_NAME_TAKEN', 'm', { errno: 'EBUSY' }), new BindError('ERR_BIND_IN_USE', 'm', { errno: 'EBUSY' }), new UapiSocketError('ERR_UAPI_SOCKET_FAILED', 'm', { errno: 'EBUSY' })]) {
      expect(e instanceof OsError).toBe(true);
      expect(e.errno).toBe('EBUSY');
    }
    expect(new TunError('ERR_TUN_CLOSED', 'm').errno).toBeUndefined();
    // UapiError's errno is the number sent on the wire, not an OS name
    expect(new UapiError('ERR_UAPI_PORT_IN_USE', 'm').errno).toBe(-98);
    expect(new UapiError('ERR_UAPI_INVALID', 'm') instanceof OsError).toBe(false);
  });

  it('instanceof TunError holds for a TunError from a second copy of src/io/errors.ts', async () => {
    const copy = (await import('../../src/io/errors.ts?copy' as string)) as typeof import('../../src/io/errors.js');
    expect(copy.TunError).not.toBe(TunError);
    const foreign = new copy.TunError('ERR_TUN_CLOSED', 'from the other copy', { errno: 'EBADFD' });
    expect(foreign instanceof TunError).toBe(true);
    expect(foreign instanceof OsError).toBe(true);
    expect(foreign instanceof BindError).toBe(false);
    expect(new copy.BindError('ERR_BIND_FWMARK', 'x') instanceof TunError).toBe(false);
    expect(new TunError('ERR_TUN_MTU', 'x') instanceof copy.TunError).toBe(true);
    expect(hasCode(foreign, 'ERR_TUN_CLOSED')).toBe(true);
  });
});
