"""The Spanish half of the one message catalogue (`--lang es`): exactly the keys of
`messages.EN`, with the same {placeholders} (tests/test_lang.py checks both).

Written for a student of a Spanish university course on web farms: "petición", "balanceador",
"respuesta", "cierre"; TCP flags (SYN, ACK, FIN, RST) and nginx's "upstream" stay as the course
and Wireshark say them. Roles (client, M3, M1…) are data, not words: they are never translated.
"""

from __future__ import annotations

ES: dict[str, str] = {
    # --- errores: entrada -------------------------------------------------------------------
    "err.missing": "No existe el fichero: {path}",
    "err.directory": "{path} es un directorio, no un fichero de captura.",
    "err.unreadable": "No se puede leer {path}: {reason}",
    "err.not_capture": (
        "{path} no es un fichero de captura que tshark entienda (se esperaba pcap o pcapng).\n"
        "tshark dijo: {detail}"
    ),
    "err.cut_in_header": (
        "{path} está cortado antes de su primer paquete ({size} bytes: el fichero termina "
        "dentro de su cabecera o de su primer paquete): no hay nada que analizar."
    ),
    "err.empty": "{path} no contiene paquetes: no hay nada que analizar.",
    "err.empty_file": "{path} es un fichero vacío (0 bytes), no una captura.",
    "err.not_pcap": (
        "{path} no es una captura pcap ni pcapng, y tshark no encontró en él ninguna petición "
        "HTTP (sus primeros bytes no corresponden a ningún formato de captura que lbreport espere)."
    ),
    "err.no_http_cut": (
        "{path} está cortado tras {frames} trama(s), antes de ninguna petición HTTP al "
        "balanceador: no hay nada que analizar."
    ),
    "err.no_http_at_all": (
        "{path}: ninguna de sus {frames} tramas es una petición HTTP (buscadas en los puertos "
        "TCP {ports}). ¿Es una captura del tráfico web de la granja? Otros puertos: --lab LAB.toml."
    ),
    "err.no_http": (
        "{path}: ninguna de sus {frames} tramas pertenece a una petición HTTP al balanceador.\n"
        "Revisa la dirección del balanceador y su(s) puerto(s) HTTP (--lab LAB.toml; "
        "`lbreport roles {path}` propone uno)."
    ),
    "err.tshark_failed": "tshark falló (código de salida {code}): {detail}",
    "err.pdml": "No se pudo leer la salida de tshark ({detail}). tshark dijo: {stderr}",
    "err.output": "No se puede escribir {path}: {reason}",
    # --- HTTPS -------------------------------------------------------------------------------
    "err.keylog_missing": "No existe el registro de claves TLS: {path}",
    "err.keylog_directory": "{path} es un directorio, no un registro de claves TLS.",
    "err.keylog_unreadable": "No se puede leer el registro de claves TLS {path}: {reason}",
    "err.keylog_format": (
        "{path} no es un registro de claves TLS: no tiene ninguna línea como `CLIENT_RANDOM "
        "<hex> <hex>` (el formato NSS que escriben `SSLKEYLOGFILE=FICHERO curl …` y los "
        "navegadores)."
    ),
    "err.no_http_tls": (
        "{path}: no se encontró ninguna petición, pero {tls} trama(s) son TLS al/los "
        "puerto(s) HTTPS del balanceador ({ports}) y el plugin no pudo distinguir peticiones "
        "en ellas. Da el registro de claves TLS escrito durante la captura (--keylog FICHERO, "
        "p. ej. de `SSLKEYLOGFILE=FICHERO curl -k …`) para leer las peticiones HTTPS; otros "
        "puertos HTTPS: [farm] https_ports en --lab LAB.toml."
    ),
    "err.no_http_tls_keylog": (
        "{path}: ninguna petición en sus {tls} trama(s) TLS al/los puerto(s) HTTPS ({ports}), "
        "ni siquiera con el registro de claves {keylog}: ¿es el que se escribió mientras se "
        "hacía esta captura (la misma sesión de curl o del navegador)?"
    ),
    # --- errores: tshark y el plugin -----------------------------------------------------------
    "err.tshark_missing": (
        "No se encuentra tshark en el PATH. Instálalo (Debian/Ubuntu: `apt-get install tshark`; "
        "o ejecuta `bash scripts/setup.sh` como root)."
    ),
    "err.tshark_old": (
        "tshark {version} es demasiado antiguo: lbreport necesita Wireshark {minimum} o posterior. "
        "Actualízalo (Debian 12 trae la 4.0)."
    ),
    "err.tshark_no_lua": (
        "tshark {version} se compiló sin Lua, así que no puede ejecutar el plugin lblab. "
        "Instala una versión con Lua (el paquete `tshark` de Debian la tiene)."
    ),
    "err.root_skips_lua": (
        "tshark {version} se ejecuta como root y no carga scripts Lua de usuario (Wireshark 4.2 "
        "y posteriores no lo hacen salvo que `run_user_scripts_when_superuser` esté activado), y "
        "lbreport no pudo ejecutarlo como usuario normal (¿falta `setpriv`?). Ejecuta lbreport "
        "como usuario normal, o instala el plugin para todos con `lbreport install --system`."
    ),
    "err.plugin_not_loaded": (
        "tshark {version} no cargó el plugin lblab y no dijo por qué. `lbreport doctor` "
        "comprueba cada paso."
    ),
    "err.stalled": (
        "tshark dejó de avanzar durante {seconds} s (sin usar CPU ni producir salida): se ha "
        "detenido. Por favor, notifícalo junto con la captura."
    ),
    "err.tshark_version": "No se pudo saber qué tshark es este (`tshark -v` dijo: {detail}).",
    "err.plugin_lua": (
        "El plugin lblab falló dentro de tshark (un error de Lua):\n{detail}\n"
        "Es un fallo de plugins/lblab.lua; por favor, notifícalo junto con la captura."
    ),
    "err.labels_cut": (
        "tshark se detuvo mientras el plugin lblab escribía sus etiquetas (tras {frames} "
        "trama(s)); el informe quedaría incompleto. Por favor, infórmalo con la captura."
    ),
    "err.plugin_frames": (
        "El plugin lblab dio un error de Lua en {count} trama(s) (la primera: trama {frame}: "
        "{detail}). El informe saldría mal; por favor, notifícalo junto con la captura."
    ),
    # --- errores: fichero de laboratorio --------------------------------------------------------
    "err.lab_missing": "No se encuentra el fichero de laboratorio: {path}",
    "err.lab_toml": "El fichero de laboratorio {path} no es TOML válido: {detail}",
    "err.lab_key": "Fichero de laboratorio {path}: {key}: {problem}",
    "lab.unknown_key": "clave desconocida (se esperaba una de: {expected})",
    "lab.not_table": "debe ser una tabla",
    "lab.not_list_str": "debe ser una lista de cadenas",
    "lab.not_list_port": "debe ser una lista de puertos TCP (enteros de 1 a 65535)",
    "lab.bad_address": "{value!r} no es una dirección IPv4 ni IPv6",
    "lab.bad_role": (
        "{value!r} no es un nombre de servidor final (usa M1, M2, M4…; M3 es el balanceador)"
    ),
    "lab.not_str": "debe ser una cadena",
    "lab.bad_marker": "debe ser una cadena no vacía y sin ';' (separa las marcas)",
    "lab.bad_policy": "debe ser \"round-robin\", \"weights\", \"ip-hash\" o \"least-conn\"",
    "lab.bad_weight": "debe ser un entero positivo",
    "lab.weights_needed": (
        "la política \"weights\" necesita una tabla weights con el peso de cada servidor final"
    ),
    "lab.weight_unknown": "nombra {value!r}, que no es un servidor final de [backends]",
    "lab.need_balancer": "debe indicar la(s) dirección(es) del balanceador si se da [backends]",
    # --- avisos (stderr; el informe sale igualmente) --------------------------------------------
    "warn.truncated": (
        "Aviso: {path} se corta a mitad de un paquete; este informe cubre las {frames} tramas "
        "anteriores al corte."
    ),
    "warn.stderr": "tshark: {line}",
    # --- progreso ---------------------------------------------------------------------------------
    "progress.pass1": "Etiquetando paquetes (pasada 1/2)",
    "progress.pass2": "Leyendo peticiones (pasada 2/2)",
    "progress.one_pass": "Leyendo paquetes (el plugin los registra)",
    "progress.labels": "Leyendo las etiquetas del plugin",
    # --- cabecera del informe ---------------------------------------------------------------------
    "hdr.title": "lbreport: {capture}",
    "hdr.capture_point": "Punto de captura",
    "hdr.roles": "Roles",
    "hdr.roles_configured": "configurados: {source}",
    "hdr.roles_inferred": (
        "deducidos del tráfico (ninguna dirección del laboratorio aparece en la captura)"
    ),
    "hdr.truncated": (
        "CAPTURA CORTADA: termina a mitad de un paquete; se leyeron las tramas hasta la {frame}."
    ),
    "hdr.https": "HTTPS",
    "note.encrypted": (
        "cifrado (TLS): da --keylog FICHERO para ver método, URI y estado de {count} "
        "petición(es)."
    ),
    "note.encrypted_m3": (
        "cifrado (TLS) en el tramo cliente–M3: método, URI y estado de {count} petición(es) "
        "vienen del tramo interno de M3, en claro (lo que se pidió al servidor final y lo que "
        "respondió); da --keylog FICHERO para leer el propio tramo del cliente."
    ),
    "note.encrypted_both": (
        "cifrado (TLS) en los dos tramos (M3 vuelve a cifrar hacia los servidores finales): "
        "método, URI y estado de {count} petición(es) no se pueden saber con esta captura, y "
        "el servidor final de cada una se enlaza solo por los tiempos. Da --keylog FICHERO "
        "(con las claves de los servidores también) para leerlos."
    ),
    "cp.client": "vista del cliente (solo el tramo cliente ↔ M3)",
    "cp.M3": "vista del balanceador M3 (los dos tramos: cliente ↔ M3 ↔ servidores finales)",
    "cp.backend": "vista del servidor final {role} (solo el tramo M3 ↔ {role})",
    "cp.unknown": "desconocido (no se ve ningún tramo)",
    "lab.default_name": "el laboratorio clásico (incluido por defecto)",
    # --- por petición -----------------------------------------------------------------------------
    "req.title": "Petición {index}",
    "req.client": "Cliente",
    "req.request": "Petición",
    "req.client_xff": (
        "(el cliente envió su propia X-Forwarded-For: {value}; no se toma como su "
        "dirección)"
    ),
    "req.status": "Estado HTTP",
    "req.backend": "Servidor final",
    "req.backend_unknown": "desconocido",
    "req.timings": "Tiempos",
    "req.anomalies": "Anomalías",
    "req.none": "ninguna",
    "req.no_status": "sin respuesta",
    "req.status_encrypted": "desconocido (la respuesta va cifrada)",
    "req.encrypted": "(cifrada)",
    "req.status_back_leg": "{status} (la respuesta del servidor final en el tramo interno: el "
                           "tramo del cliente va cifrado)",
    "req.by_balancer": "ninguno: respondió el propio balanceador (una redirección, HTTP {status})",
    "evidence.back-leg": (
        "tramo interno (la petición de M3 al servidor está en la captura: seguro)"
    ),
    "evidence.marker": "marca (la respuesta dice qué servidor la generó)",
    "evidence.arp": (
        "ARP (M3 preguntó mientras tanto por la dirección de ese servidor: indicio "
        "débil)"
    ),
    "evidence.none": "ninguna (esta captura no permite saberlo)",
    "timing.handshake_rtt": "RTT del saludo TCP (SYN → SYN/ACK)",
    "timing.request_to_upstream": "petición → petición de M3 al servidor",
    "timing.backend_time": "tiempo del servidor final (up-petición → up-respuesta)",
    "timing.time_to_first_byte": "tiempo hasta la respuesta (petición → respuesta)",
    "timing.total": "total (primera → última trama)",
    "timing.na": "n/d",
    "ladder.frame": "trama",
    "ladder.time": "+ms",
    # --- anomalías --------------------------------------------------------------------------------
    "anom.no-response": "sin respuesta",
    "anom.missing-step": "falta el paso: {step}",
    "anom.repeated-step": "paso repetido: {step} ×{count}",
    "anom.rst": "conexión abortada (RST): {src}→{dst}",
    "anom.retransmission": "retransmisión: {count} trama(s)",
    "anom.http-5xx": "error del servidor: HTTP {status}",
    "anom.upstream-5xx": "un servidor final respondió HTTP {status} ({backend})",
    "anom.failover": "el balanceador cambió de servidor final (failover): {path}",
    "anom.no-upstream": "no aparece en la captura la petición de M3 a ningún servidor final",
    # --- issues 18/19 (helper-7): respuestas provisionales, cachés, sin balanceador, cuentas ----
    "step.interim": "provisional",
    "step.up-interim": "up-provisional",
    "step.FIN-server": "FIN-servidor",
    "evidence.cache": "caché (respondió la caché del balanceador)",
    "cp.no-balancer": (
        "sin balanceador: nada en esta captura muestra un balanceador de carga (un cliente y "
        "el servidor o servidores web con los que habló)"
    ),
    "hdr.balancer": "Balanceador",
    "hdr.roles_inferred_partly": (
        "deducidos del tráfico ({count} direcciones del laboratorio aparecen en la captura, "
        "pero el laboratorio no la describe: su balanceador no aparece como tal)"
    ),
    "note.xff_only": (
        "la única señal de un balanceador es la cabecera X-Forwarded-For, un indicio débil: un "
        "cliente puede escribir esa cabecera él mismo."
    ),
    "req.backend_no_balancer": "no aplica (sin balanceador: respondió el propio servidor web)",
    "req.backend_na": "no aplica",
    "req.by_cache": "ninguno: respondió la caché del balanceador",
    "req.cache": "la caché del balanceador",
    "req.status_interim": "{status} (tras la(s) respuesta(s) provisional(es) {interim})",
    "timing.time_to_interim": "tiempo hasta la respuesta provisional (petición → provisional)",
    "noresp.lost-segment": (
        "sin respuesta: no se capturó el primer segmento de la respuesta (se perdió)"
    ),
    "noresp.cut-short": "sin respuesta: la captura se cortó antes",
    "sum.cache_hits": "Aciertos de caché",
    "sum.cache_hits_line": (
        "{count} petición(es) respondidas por el balanceador desde su caché: ningún servidor "
        "final las atendió, así que no cuentan ni en las peticiones por servidor final ni en "
        "la evaluación del balanceo"
    ),
    "sum.backends_no_balancer": "no aplica: no hay balanceador en esta captura",
    "sum.http_requests": "Peticiones HTTP que leyó tshark",
    "sum.http_requests_line": (
        "{seen} = {front} de clientes + {upstream} de M3 a los servidores finales + {direct} "
        "directas + {outside} fuera de toda petición{other} (+ {copies} copias retransmitidas)"
    ),
    "sum.http_requests_other": " ({count} hacia otros balanceadores)",
    "sum.http_requests_missing": "; {count} de ellas no están en este informe",
    "sum.http_requests_orphans": (
        " (tshark leyó {count} respuesta(s) cuyas cabeceras de petición no pudo descodificar, "
        "como con una compresión de cabeceras de HTTP/2 que no pudo seguir)"
    ),
    "bal.not_judged_no_balancer": (
        "sin evaluar: esta captura no muestra ningún balanceador (cada servidor web respondió "
        "sus propias peticiones)."
    ),
    "err.no_http_responses_only": (
        "{path}: tshark leyó {count} respuesta(s) HTTP en sus {frames} tramas pero no la(s) "
        "petición(es) a las que responden: no pudo descodificar sus cabeceras (una compresión "
        "de cabeceras de HTTP/2 que tshark no pudo seguir, p. ej. falta el inicio de la "
        "conexión o una trama HEADERS). No hay nada que informar."
    ),
    "roles.no_balancer": (
        "{path}: nada en esta captura muestra un balanceador de carga (un cliente y el servidor "
        "o servidores web con los que habló), así que no hay fichero de laboratorio que "
        "escribir. `lbreport report {path}` informa de sus peticiones."
    ),
    # --- resumen ----------------------------------------------------------------------------------
    "sum.title": "Resumen",
    "sum.requests": "Peticiones",
    "sum.frames": "Tramas",
    "sum.frames_detail": "{total} en total = {inreq} en peticiones + {other} otras",
    "sum.frames_by_kind": "{total} en total = {inreq} en peticiones + {other} otras ({kinds})",
    "sum.kind.other": "otras",
    "sum.direct": "Peticiones directas",
    "sum.direct_count": "{count}, abajo (sin pasar por el balanceador)",
    "direct.title": "Peticiones directas (sin pasar por el balanceador)",
    "direct.note": (
        "Cada una fue de un cliente directamente a un servidor final, sin M3: no es una "
        "petición balanceada, así que no está en las peticiones de arriba ni en el veredicto "
        "del reparto."
    ),
    "sum.status_counts": "Códigos de estado",
    "sum.backends": "Peticiones por servidor final",
    "sum.other_balancer": "Excluido",
    "sum.other_balancer_line": (
        "otro balanceador, {address}, recibió {requests} petición(es) HTTP en esta captura "
        "(¿una segunda granja?): este informe explica una sola granja; usa --lab con ese "
        "balanceador para ver la otra"
    ),
    "warn.other_balancer": (
        "Aviso: {path} contiene otro balanceador, {address} ({requests} petición(es)), que "
        "queda fuera de este informe."
    ),
    "sum.balance": "Reparto de carga",
    "sum.latency": "Latencia ({basis})",
    "sum.latency_basis.time_to_first_byte": "tiempo hasta la respuesta",
    "sum.latency_basis.backend_time": "tiempo del servidor final",
    "sum.latency_none": "ninguna petición tiene una latencia medible",
    "sum.status_encrypted": "cifrado (desconocido)",
    "sum.no_status": "sin respuesta",
    "bal.matches": "coincide con {policy}: esperado {expected}, observado {observed}.",
    "bal.differs": "NO coincide con {policy}: esperado {expected}, observado {observed}.",
    "bal.sequence": "El orden de los servidores también sigue la rotación de la política.",
    "bal.sequence_broken": "El orden de los servidores rompe la rotación en la petición {index}.",
    "bal.unknown_some": (
        "Se han dejado fuera del veredicto {count} petición(es) cuyo servidor final no se ve "
        "en esta captura."
    ),
    "bal.not_judged_backend": (
        "sin evaluar: una captura en un servidor final solo ve las peticiones que atendió él."
    ),
    "bal.not_judged_unknown": (
        "sin evaluar: en esta captura no se conoce el servidor final de ninguna petición."
    ),
    "bal.not_judged_single": "sin evaluar: solo se conoce un servidor final.",
    "policy.round-robin": "round robin (turno rotatorio)",
    "policy.weights": "pesos {weights}",
    "policy.ip-hash": "ip-hash (por dirección del cliente)",
    "policy.least-conn": "least-conn (menos conexiones en curso)",
    "bal.not_judged_one": (
        "sin evaluar: solo una petición tiene servidor final conocido (cualquier política "
        "puede mandar una petición a cualquiera)."
    ),
    "bal.none": "no se ha declarado política; observado {observed}: {verdicts}.",
    "bal.with": "compatible con {policies}",
    "bal.with_none": "no es compatible con round robin, ni con ip-hash, ni con least-conn",
    "bal.not_with": "no con {policy}: {why}",
    "bal.cannot": "{policy} no se puede evaluar: {why}",
    "bal.and": "{head} y {last}",
    "bal.also": "La secuencia es compatible con {policies}.",
    "bal.weights_hint": (
        "Los pesos no se pueden comprobar sin conocerlos: decláralos en el fichero de "
        "laboratorio ([policy] kind = \"weights\", weights = { M1 = 3, M2 = 1 })."
    ),
    "bal.matches_ip_hash": (
        "coincide con ip-hash: cada dirección de cliente fue siempre al mismo servidor final."
    ),
    "bal.matches_least_conn": (
        "coincide con least-conn hasta donde la captura permite saber: cada una de las "
        "{count} petición(es) enviadas mientras otras estaban en curso fue a un servidor "
        "final con el menor número en curso."
    ),
    "bal.differs_why": "NO coincide con {policy}: {why}.",
    "bal.not_judged_policy": "sin evaluar: esta captura no permite saber si es {policy}: {why}.",
    "bal.least_conn_basis": (
        "(least-conn: peticiones en curso acotadas con los tiempos de petición y respuesta de "
        "la captura; el contador del balanceador no está en ella.)"
    ),
    "bal.why.rotation": "el orden de los servidores rompe la rotación en la petición {index}",
    "bal.why.client-split": "el cliente {client} fue a {backends}",
    "bal.why.busier": (
        "la petición {index} fue a {backend}, que tenía {busy} petición(es) en curso, "
        "mientras {other} tenía como mucho {idle}"
    ),
    "bal.why.no-overlap": (
        "ninguna petición se envió mientras otra estaba en curso, así que todos los "
        "servidores tenían el mínimo"
    ),
    "bal.why.no-repeat-client": (
        "ninguna dirección de cliente hizo dos peticiones con servidor final conocido"
    ),
    # --- orden roles ------------------------------------------------------------------------------
    "roles.header": (
        "# Fichero de laboratorio deducido por `lbreport roles` a partir de {capture}.\n"
        "# Revísalo y úsalo así: lbreport report CAPTURA --lab ESTE_FICHERO.toml"
    ),
    "roles.markers_hint": (
        "# Opcional: un texto que solo contengan las respuestas de ese servidor, p. ej.\n"
        "# M1 = \"Soy la máquina 1\""
    ),
    "roles.none": (
        "No se pudo deducir ningún rol de {path}: no se ve tráfico HTTP hacia un balanceador."
    ),
    # --- doctor -----------------------------------------------------------------------------------
    "install.not_listed": (
        "`tshark -G plugins` no muestra {path}: Wireshark no lo cargará (¿es esta la carpeta "
        "que indica `tshark -G folders`?)"
    ),
    "install.root_skips": (
        "Wireshark {version} se ejecuta aquí como root y, como todo Wireshark desde 4.2, no "
        "carga plugins Lua personales como root: {path} no se carga para root. Ejecuta "
        "Wireshark con tu usuario (los permisos de captura vienen del grupo `wireshark`: `sudo "
        "usermod -aG wireshark $USER` y vuelve a iniciar sesión), o instálalo para todos, root "
        "incluido, con `lbreport install --system`. `lbreport report` funciona en ambos casos "
        "(analiza como usuario normal)."
    ),
    "doc.ok": "bien",
    "doc.fail": "FALLO",
    "doc.tshark": "tshark en el PATH",
    "doc.version": "versión de tshark ≥ {minimum}",
    "doc.lua": "tshark compilado con Lua",
    "doc.plugin": "plugin lblab",
    "doc.plugin_version": "versión del plugin",
    "doc.untested": (
        "{version} (más reciente que {newest}, la última versión de Wireshark probada: "
        "debería funcionar; informa de cualquier rareza)"
    ),
    "doc.as_user": (
        "como root, tshark {version} no carga scripts Lua de usuario: lbreport lo ejecuta "
        "como uid {uid} para la disección (en la interfaz gráfica: ejecuta Wireshark con "
        "tu usuario, o `lbreport install --system`)"
    ),
    "doc.plugin_loads": "el plugin carga sin errores de Lua",
    "doc.plugin_repo": "{path} (se pasa con -X)",
    "doc.plugin_installed": "instalado en la carpeta de plugins de Wireshark ({path})",
    "doc.plugin_not_registered": (
        "el plugin cargó pero no registró ningún protocolo lblab: {detail}"
    ),
    "doc.all_ok": "Todo lo que necesita lbreport está en su sitio.",
    "doc.some_failed": (
        "Algunas comprobaciones fallaron; arréglalas en orden (cada una depende de las anteriores)."
    ),
    # --- nombres de los pasos ---------------------------------------------------------------------
    "step.SYN": "SYN",
    "step.SYN/ACK": "SYN/ACK",
    "step.ACK": "ACK",
    "step.request": "petición",
    "step.ACK-req": "ACK-petición",
    "step.data": "datos",
    "step.response": "respuesta",
    "step.ACK-resp": "ACK-respuesta",
    "step.FIN-client": "FIN-cliente",
    "step.FIN-M3": "FIN-M3",
    "step.last-ACK": "ACK-final",
    "step.RST": "RST",
    "step.up-SYN": "up-SYN",
    "step.up-SYN/ACK": "up-SYN/ACK",
    "step.up-ACK": "up-ACK",
    "step.up-request": "up-petición",
    "step.up-ACK-req": "up-ACK-petición",
    "step.up-data": "up-datos",
    "step.up-response": "up-respuesta",
    "step.up-ACK-resp": "up-ACK-respuesta",
    "step.up-last-ACK": "up-ACK-final",
    "step.up-RST": "up-RST",
    "step.up-FIN-M3": "up-FIN-M3",
    "step.up-FIN-backend": "up-FIN-servidor",
    "step.ACK-FIN": "ACK-FIN",
    "step.FIN-backend": "FIN-servidor",
    "step.up-ACK-FIN": "up-ACK-FIN",
    "step.TLS-ClientHello": "TLS-ClientHello",
    "step.up-TLS-ClientHello": "up-TLS-ClientHello",
    "step.TLS-ServerHello": "TLS-ServerHello",
    "step.up-TLS-ServerHello": "up-TLS-ServerHello",
    "step.TLS-Finished": "TLS-Finished",
    "step.up-TLS-Finished": "up-TLS-Finished",
    "step.TLS-close": "TLS-cierre",
    "step.up-TLS-close": "up-TLS-cierre",
    "step.ARP-who-has": "ARP-quién-tiene",
    "step.ARP-reply": "ARP-respuesta",
    "step.ND-solicit": "ND-solicitud",
    "step.ND-advert": "ND-anuncio",
    # --- cabecera CSV -----------------------------------------------------------------------------
    "csv.index": "peticion",
    "csv.client": "cliente",
    "csv.method": "metodo",
    "csv.uri": "uri",
    "csv.status": "estado",
    "csv.backend": "servidor_final",
    "csv.backend_evidence": "prueba_servidor",
    "csv.frames": "tramas",
    "csv.handshake_rtt": "rtt_saludo",
    "csv.request_to_upstream": "peticion_a_upstream",
    "csv.backend_time": "tiempo_servidor",
    "csv.time_to_first_byte": "tiempo_hasta_respuesta",
    "csv.total": "total",
    "csv.anomalies": "anomalias",
    # --- informe HTML -----------------------------------------------------------------------------
    "html.lang": "es",
    "html.legend": "Leyenda",
    "html.leg.front": "tramo cliente (cliente ↔ M3)",
    "html.leg.back": "tramo interno (M3 ↔ servidor final)",
    "html.leg.arp": "ARP / descubrimiento de vecinos (¿quién tiene esta dirección?)",
    "html.flagged": "incidencia TCP (retransmisión, ACK duplicado…)",
    "html.requests": "Peticiones",
    "html.col.index": "Nº",
    "html.col.evidence": "Prueba",
    "html.col.latency": "Latencia",
    "html.col.frames": "Tramas",
    "html.diagram": "Diagrama de secuencia de la petición {index}",
    "html.open_hint": (
        "Abre cada petición para ver su diagrama de secuencia, sus tiempos y sus anomalías."
    ),
    "html.chart_backends": "Peticiones por servidor final",
    "html.chart_latency": (
        "Latencia de cada petición ({basis}), ordenada; líneas en p50 y p90"
    ),
    "html.chart_latency_none": "Ninguna petición tiene una latencia medible en esta captura.",
    "html.bar": "petición {index}: {backend}, {value}",
    "html.footer": "Generado por lbreport {version}. Autocontenido: sin red y sin scripts.",
    "html.anomalies_count": "{count} anomalía(s)",
    "html.expected": "lo que espera la política de reparto",
    # --- batch (un directorio de capturas, una fila por captura) ----------------------------------
    "batch.col.file": "fichero",
    "batch.col.requests": "peticiones",
    "batch.col.complete": "completas",
    "batch.col.backends": "servidores finales (prueba)",
    "batch.col.anomalies": "anomalías",
    "batch.col.anomaly_kinds": "tipos de anomalía",
    "batch.col.capture_point": "punto de captura",
    "batch.col.truncated": "cortada",
    "batch.col.error": "error",
    "batch.title": "lbreport batch: {path}",
    "batch.yes": "sí",
    "batch.no": "no",
    "batch.progress": "Leyendo capturas",
    "batch.done": "{total} captura(s): {ok} analizadas, {failed} con error.",
    "batch.err.missing": "No existe el directorio: {path}",
    "batch.err.not_dir": (
        "{path} no es un directorio (indica la carpeta que contiene las "
        "capturas)."
    ),
    "batch.err.unreadable": "No se puede listar {path}: {reason}",
    "batch.err.no_captures": (
        "{path} no contiene ficheros de captura ({patterns}), ni en él ni en sus subcarpetas."
    ),
    "batch.err.internal": "error interno: {detail}",
    "batch.err.jobs": "--jobs debe ser al menos 1.",
    # --- install, doctor, bundle, live ----------------------------------------------------
    "install.warning": "aviso: {text}",
    "install.err.folders": (
        "`tshark -G folders` no indicó estas carpetas: {missing}. ¿Está este Wireshark "
        "compilado con Lua?"
    ),
    "install.err.write": "No se puede escribir {path}: {reason}",
    "install.err.write_system": (
        "No se puede escribir {path}: {reason} (--system escribe en la carpeta global de "
        "Wireshark: ejecútalo como root)"
    ),
    "install.err.no_profile": "Falta el perfil LB-Lab en el repositorio: {path}",
    "install.err.no_plugin": "Falta el plugin en el repositorio: {path}",
    "install.installed": "plugin {version} instalado: {path}",
    "install.identical": "el plugin {version} ya estaba instalado (idéntico): {path}",
    "install.replaced": "plugin {old} sustituido por {version}: {path}",
    "install.unknown_version": "de versión desconocida",
    "install.profile_installed": "perfil {profile}, fichero {name} instalado: {path}",
    "install.profile_unchanged": "perfil {profile}, fichero {name} sin cambios: {path}",
    "install.profile_replaced": "perfil {profile}, fichero {name} sustituido: {path}",
    "install.other_copy": (
        "también se carga otra copia ({version}): {path}. Wireshark registra el protocolo "
        "lblab dos veces y la segunda copia falla; quita una (`{command}` si es la de la otra "
        "carpeta)."
    ),
    "install.use_it": (
        "úsalo: wireshark -C {profile} -r CAPTURA  (o elige el perfil {profile} en la barra de "
        "estado); `lbreport report` usa ahora esta copia"
    ),
    "install.err.not_lblab": "{path} no es el plugin lblab (no tiene Proto(\"lblab\")): no se toca",
    "install.removed": "plugin {version} eliminado: {path}",
    "install.unknown_version_paren": "(versión desconocida)",
    "install.nothing_to_remove": "no hay ningún plugin que quitar en {path}",
    "install.profile_removed": "perfil {profile}, fichero {name} eliminado: {path}",
    "install.profile_kept": (
        "se conserva {path}: contiene además {files}, escritos por Wireshark, no por install "
        "(borra la carpeta si ya no quieres el perfil)"
    ),
    "install.profile_folder_removed": "carpeta del perfil eliminada: {path}",
    "install.no_profile": "no hay perfil {profile} en {path}",
    "install.hosts_removed": (
        "quitado el fichero hosts del perfil (los nombres que escribió un `install --lab` "
        "anterior; vuelve a dar --lab para conservarlos): {path}"
    ),
    "install.hosts_no_address": "{lab} no da ninguna dirección: no se escribe fichero hosts",
    "install.hosts_foreign": (
        "se conserva {path}: no lo escribió lbreport install (su primera línea no es "
        "`{marker}`), así que no se escriben los nombres del laboratorio"
    ),
    "install.version_repo": "{version} (copia del repositorio, sin instalar)",
    "install.version_unknown": "desconocida",
    "install.version_at": "{version} en {path}",
    "install.version_twice": (
        "instalado dos veces ({where}): quita una con `lbreport install --uninstall`"
    ),
    "install.version_installed": "{version} instalado en {path}",
    "install.version_differs": (
        "la versión instalada {version} en {path} no es la del repositorio ({repo}): ejecuta "
        "`lbreport install` para actualizarla"
    ),
    "doc.lua_version": "Lua {version}",
    "bundle.err.no_version": "{path} no declara VERSION: no se puede poner versión al paquete",
    "bundle.err.no_plugin": "Falta el plugin en el repositorio: {path}",
    "bundle.err.write": "No se puede escribir {path}: {reason}",
    "live.started": "lbreport live en {iface} (filtro de captura: {bpf})",
    "live.roles": "roles: {roles}",
    "live.roles_configured": "configurados: {source}",
    "live.roles_inferred": "deducidos del tráfico (da --lab LAB.toml para fijarlos)",
    "live.writing": "escribiendo la captura en {path}",
    "live.each_request": "cada petición se muestra cuando se cierra su conexión; Ctrl-C para.",
    "live.starting": "arrancando dumpcap y tshark con el plugin lblab…",
    "live.capturing": "lbreport live: capturando ya en {iface}.",
    "live.running": (
        "── en vivo: {requests} petición(es) · {backends} · {errors} error(es) (5xx o sin "
        "respuesta)"
    ),
    "live.no_backend_yet": "aún ningún servidor final",
    "live.no_packet_yet": (
        "lbreport live: aún ningún paquete: nada coincidió con el filtro de captura en {iface} "
        "en {seconds} s (filtro: {bpf}). ¿Pasa el tráfico del laboratorio por esta interfaz "
        "(curl http://M3/ desde el cliente)? Prueba otra interfaz, o --filter '' para verlo "
        "todo."
    ),
    "live.lua_error": "lbreport live: el plugin lblab dio un error de Lua: {detail}",
    "live.err.ended": "la captura en {iface} terminó: {reason}",
    "live.no_packet": "lbreport live: no se capturó ningún paquete en {iface} (filtro: {bpf}).",
    "live.late_frames": (
        "lbreport live: {count} trama(s) llegaron después de mostrar su petición; están en el "
        "resumen y en el fichero escrito."
    ),
    "live.err.write": "No se puede escribir {path}: {reason}",
    "live.err.no_iface": (
        "No existe la interfaz {iface}. Interfaces en las que dumpcap puede capturar "
        "aquí:\n{interfaces}\n(En el anfitrión del laboratorio suele ser la interfaz "
        "solo-anfitrión, p. ej. vboxnet0; dentro de M3, su propia interfaz, p. ej. eth0 o "
        "enp0s8.)"
    ),
    "live.err.no_permission": (
        "Sin permiso para capturar en {iface}: ejecuta lbreport live como root (sudo), o deja "
        "capturar a tu usuario: `sudo dpkg-reconfigure wireshark-common` (responde Sí), `sudo "
        "usermod -aG wireshark $USER` y vuelve a iniciar sesión."
    ),
    "live.err.dumpcap": "dumpcap no puede capturar en {iface}: {reason}",
    "live.no_message": "sin mensaje",
    "live.none_listed": "(ninguna)",
    # --- la ayuda de la línea de órdenes
    "help.app": (
        "Explica el recorrido de cada petición HTTP por una granja web con balanceador de carga."
    ),
    "help.report": (
        "Informe del ciclo de vida de cada petición: roles, pasos, servidor final y su prueba, "
        "tiempos."
    ),
    "help.report.keep_pdml": ("Lee el PDML de dos pasadas de tshark (no las etiquetas del "
                               "propio plugin) y lo guarda en FICHERO."),
    "help.roles": (
        "Muestra los roles deducidos de una captura como un fichero de laboratorio listo "
        "para usar."
    ),
    "help.doctor": (
        "Comprueba tshark, su soporte de Lua y el plugin; dice cómo arreglar lo que falle."
    ),
    "help.install": (
        "Instala el plugin y el perfil LB-Lab en las carpetas de Wireshark (tshark -G folders)."
    ),
    "help.install.system": "La carpeta global de plugins Lua de Wireshark (root).",
    "help.install.uninstall": "Quita lo que install puso allí.",
    "help.install.lab": (
        "Fichero de laboratorio (TOML): nombra sus equipos en el perfil (un fichero hosts: M3, "
        "M1, M2…, client) para Conversations, Endpoints, Flow Graph y las columnas de "
        "direcciones."
    ),
    "help.bundle": (
        "Escribe el zip del alumno: plugin, perfil LB-Lab (importable), guía en inglés y "
        "español."
    ),
    "help.bundle.output": "Escribe el zip en FICHERO. Por defecto: lblab-student-VERSIÓN.zip",
    "help.batch": (
        "Una fila por captura de una carpeta (las capturas de una clase): peticiones, ciclos "
        "completos, servidores finales y su prueba, anomalías, punto de captura, errores. "
        "Sale con 1 solo si la carpeta misma no sirve; una captura que falla es una fila con "
        "su error."
    ),
    "help.batch.directory": "Una carpeta de capturas (también sus subcarpetas).",
    "help.batch.jobs": "Capturas leídas a la vez. Por defecto: los núcleos.",
    "help.batch.lab": "Fichero de laboratorio (TOML) para todas las capturas.",
    "help.live": (
        "Explica cada petición según ocurre: captura en una interfaz del laboratorio en marcha."
    ),
    "help.live.interface": "Interfaz en la que capturar.",
    "help.live.count": "Para tras N peticiones.",
    "help.live.duration": "Para tras S segundos.",
    "help.live.write": "Guarda también la captura (pcapng).",
    "help.live.bpf": "Filtro de captura (BPF). Por defecto: el tráfico de la granja.",
    "help.opt.capture": "Un fichero pcap o pcapng.",
    "help.opt.lab": "Fichero de laboratorio (TOML). Por defecto: el laboratorio clásico.",
    "help.opt.fmt": "Formato de salida.",
    "help.opt.output": "Escribe en FICHERO.",
    "help.opt.lang": (
        "Idioma de lo que se muestra: en o es (el JSON nunca cambia). Por defecto: LC_ALL, "
        "LC_MESSAGES o LANG (es…: español), si no, inglés."
    ),
    "help.opt.keylog": (
        "Registro de claves TLS (formato NSS, p. ej. de SSLKEYLOGFILE) para leer HTTPS. Por "
        "defecto: tls.keylog del fichero de laboratorio."
    ),
    "err.lang": "--lang {value}: se esperaba uno de {choices}",
    "help.opt.help": "Muestra esta ayuda y termina.",
    "bundle.wrote": "escrito {path} (lblab {version}): {members}",
}
