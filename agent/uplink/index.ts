export {
  Uplink,
  UplinkConfigError,
  readCredentials,
  uplinkOptionsFromConfig,
  type UplinkOptions,
  type UplinkPhase,
  type UplinkState,
  type VoiceCommandHandler,
} from './uplink.js';
