/*
 * mqtt.h — the session tier's MQTT 3.1.1 framing (gateway.mqtt_listen): a
 * translator between MQTT packets (mqtt_codec.h) and Herald frames on the
 * common dispatch path, with persistent sessions (mqtt_sess.h) kept per
 * listener. What maps to what is in mqtt.c and the README ("MQTT").
 *
 * Threads: the tier's loop thread only (framing.h).
 */
#ifndef HERALD_SESSION_MQTT_H
#define HERALD_SESSION_MQTT_H

#include "framing.h"

extern const framing_ops framing_mqtt;

#endif
