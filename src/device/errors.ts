// Errors of the device's configuration contract (docs/errors.md): a closed set of codes. The
// UAPI maps them to wireguard-go's errno values (uapi/errors.ts toUapiError).

import { PlexdError } from '../errors.js';

/** Stable codes of {@link DeviceError}. */
const DEVICE_ERROR_CODES = [
  'ERR_DEVICE_CLOSED', // the device was closed before or while the change applied
  'ERR_DEVICE_INVALID', // a configuration value is malformed or out of range; nothing changed
  'ERR_DEVICE_PORT_IN_USE', // listen_port cannot be bound (cause: the BindError); nothing changed
] as const;
export type DeviceErrorCode = (typeof DEVICE_ERROR_CODES)[number];

/** A configuration change (Device.apply / configure) was refused or failed. */
export class DeviceError extends PlexdError<DeviceErrorCode> {
  static readonly codes = DEVICE_ERROR_CODES;
}
