"""Français: every word the system says or texts in French."""

TEXTS = {
    "name.plp": "PLP {plp}",
    "sms.alert": "{exercise}PLP {plp}, message de la police : {message} "
    "Répondez 1 pour confirmer. Réf {ref}",
    "sms.exercise_prefix": "EXERCICE - ",
    "email.subject": "{exercise}Message de la police pour {plp} – réf. {ref}",
    "email.exercise_prefix": "[EXERCICE] ",
    "email.exercise_notice": "EXERCICE – Ce message fait partie d'un exercice. "
    "Il ne s'agit pas d'une véritable alerte.",
    "email.intro": "La police a envoyé le message suivant aux membres de {plp} :",
    "email.source": "Source : police ({zone})",
    "email.reference": "Référence : {ref}",
    "email.confirm_intro": "Merci de confirmer que vous avez bien reçu ce message. "
    "Un seul clic suffit :",
    "email.confirm_button": "Je confirme la réception",
    "email.link_fallback": "Si le bouton ne fonctionne pas, copiez cette adresse "
    "dans votre navigateur :",
    "email.footer": "Vous recevez cet e-mail en tant que membre d'un partenariat local "
    "de prévention ({plp}). Merci de ne pas y répondre. En cas d'urgence, "
    "appelez le 101 (police) ou le 112.",
    # Level 1: the police's alert put at the coordinators' disposal.
    "sms.release_request": "{exercise}PLP {plp} : alerte de la police réf {ref} pour {members} "
    "membres : {message} Répondez OUI {ref} pour la diffuser, "
    "NON {ref} pour la refuser.",
    "sms.escalation": "{exercise}PLP {plp} : l'alerte de la police réf {ref} attend depuis "
    "{minutes} min sans réponse d'un coordinateur : {message} Répondez "
    "OUI {ref} pour la diffuser, NON {ref} pour la refuser.",
    "sms.released_by": "Alerte réf {ref} diffusée par {name} à {members} membres.",
    "sms.rejected_by": "Alerte réf {ref} refusée par {name}. Elle ne sera pas diffusée.",
    "sms.expired": "Alerte réf {ref} expirée sans diffusion.",
    "sms.all_clear": "{exercise}PLP {plp}, fin d'alerte réf {ref} : {message}",
    # Level 2: what a member hears when the alert call is answered.
    "voice.exercise_prefix": "Ceci est un exercice. ",
    "voice.alert_intro": "{exercise}Message urgent de la police pour le PLP {plp}.",
    "voice.alert_prompt": "Pour confirmer, appuyez sur 1. Pour réécouter, appuyez sur 0.",
    "voice.ack_confirmed": "Merci. Votre confirmation est enregistrée. Au revoir.",
    "voice.no_input": "Nous n'avons pas reçu de réponse. Au revoir.",
    "voice.goodbye": "Au revoir.",
    "voice.alert_over": "Ce message n'est plus d'actualité. Merci et au revoir.",
    "voice.machine_message": "{exercise}Message de la police pour le PLP {plp}. {message} "
    "Pour confirmer, répondez 1 par SMS ou rappelez ce numéro. "
    "Référence {ref}.",
    "voice.apology": "Désolé, un problème technique nous empêche de poursuivre. "
    "Veuillez nous excuser. Au revoir.",
    # Cycle de vie : diffusion décidée par le délai de la charte ; page du lien de l'e-mail.
    "sms.released_auto": "Alerte réf {ref} diffusée automatiquement à {members} membres : "
    "aucun coordinateur n'a répondu à temps.",
    "web.title": "Confirmation d'un message de la police",
    "web.confirmed": "Merci. Votre confirmation est enregistrée.",
    "web.already_confirmed": "Votre confirmation était déjà enregistrée. Merci.",
    "web.link_invalid": "Ce lien de confirmation n'est pas valable. Vérifiez que l'adresse "
    "a été copiée en entier.",
    "web.link_expired": "Ce lien de confirmation a expiré.",
    "web.alert_over": "Ce message n'est plus d'actualité : aucune confirmation n'est plus "
    "nécessaire.",
    # IVR call trees (issue 6): release call, inbound calls, recorded messages.
    "voice.coordinator_intro": "{exercise}Message urgent de votre coordinateur pour le PLP {plp}.",
    "voice.machine_intro": "{exercise}Message urgent pour le PLP {plp}.",
    "voice.machine_how_to_confirm": "Pour confirmer, répondez 1 par SMS, ou rappelez ce "
    "numéro. Référence {ref}.",
    "voice.release_intro": "{exercise}Bonjour. Ici PLP Alerte. La police demande d'envoyer un "
    "message aux membres du PLP {plp}. Référence {ref}. Voici le message.",
    "voice.release_reach": "Ce message serait envoyé à {members} membres.",
    "voice.release_prompt": "Pour l'envoyer, appuyez sur 1. Pour le refuser, appuyez sur 2. "
    "Pour le réécouter, appuyez sur 0.",
    "voice.release_machine": "{exercise}Bonjour. Ici PLP Alerte. Un message de la police pour le "
    "PLP {plp} attend votre décision. Référence {ref}. Pour l'envoyer, "
    "répondez OUI et la référence par SMS, ou rappelez ce numéro.",
    "voice.released": "Merci. Le message est envoyé à {members} membres.",
    "voice.rejected": "Merci. Le message est refusé. Il ne sera pas envoyé.",
    "voice.was_released": "Ce message a déjà été envoyé.",
    "voice.was_rejected": "Ce message a déjà été refusé.",
    "voice.not_allowed": "Vous ne pouvez pas décider de ce message.",
    "voice.stranger": "Bonjour. Vous avez appelé un service d'alerte. Ce numéro ne prend pas "
    "d'appels. Merci et au revoir.",
    "voice.pin_prompt": "Bonjour. Tapez votre code secret, puis la touche dièse.",
    "voice.pin_wrong": "Ce code n'est pas correct. Il vous reste {left} essais.",
    "voice.pin_locked": "Trop d'essais. Ce numéro est bloqué pendant {minutes} minutes. Au revoir.",
    "voice.coordinator_menu": "Pour enregistrer un nouveau message, appuyez sur 1. "
    "Pour les messages en attente, appuyez sur 2. "
    "Pour le suivi du dernier message, appuyez sur 3.",
    "voice.invalid_choice": "Ce choix n'est pas valable.",
    "voice.record_prompt": "Après le bip, dites votre message. Vous avez 2 minutes. "
    "Appuyez ensuite sur la touche dièse.",
    "voice.record_empty": "Nous n'avons rien enregistré.",
    "voice.record_playback": "Voici votre message.",
    "voice.record_review": "Pour l'envoyer, appuyez sur 1. Pour l'enregistrer à nouveau, "
    "appuyez sur 2. Pour annuler, appuyez sur 3.",
    "voice.record_again_prompt": "Pour enregistrer à nouveau, appuyez sur 2. "
    "Pour annuler, appuyez sur 3.",
    "voice.urgency_prompt": "Pour un message urgent, appuyez sur 1. "
    "Pour un message non urgent, appuyez sur 2.",
    "voice.record_wait": "Un instant, s'il vous plaît.",
    "voice.record_failed": "Désolé. Votre enregistrement n'a pas pu être conservé.",
    "voice.record_not_ready": "Votre enregistrement n'est pas encore prêt. "
    "Réessayez dans quelques minutes.",
    "voice.record_sent": "Votre message est envoyé à {members} membres. Référence {ref}.",
    "voice.record_cancelled": "Votre message est annulé. Il ne sera pas envoyé.",
    "voice.pending_none": "Aucun message n'attend de décision.",
    "voice.next_alert": "Message suivant.",
    "voice.counts": "Message {ref}. {confirmed} confirmations. {reached} membres joints, "
    "sans confirmation. {pending} en attente. {unreachable} injoignables.",
    "voice.counts_none": "Il n'y a pas encore de message.",
    "voice.member_none": "Aucun message en cours pour votre PLP.",
    "voice.ack_thanks": "Merci. Votre confirmation est enregistrée.",
    "sms.recorded_message": "Message vocal de votre coordinateur. Pour l'écouter, appelez le "
    "numéro du PLP.",
    # Recordings (issue 6): the link to a recorded message in the alert e-mail.
    "email.recording_intro": "Écoutez le message vocal de votre coordinateur :",
    # Commandes SMS (issue 7): réponses aux SMS envoyés au numéro du PLP.
    "sms.cmd.not_allowed": "Commande refusée. Ce numéro n'est pas autorisé à l'utiliser.",
    "sms.cmd.usage_member": "PLP: après une alerte, répondez 1 pour confirmer (ou 1 et la "
    "référence). STOP: plus de SMS. AIDE: cette aide.",
    "sms.cmd.usage_coordinator": "PLP: OUI <réf> diffuse une alerte, NON <réf> la refuse. ALERTE "
    "<PIN> <message> alerte votre PLP. STATUT <réf> donne le suivi. "
    "1 confirme.",
    "sms.cmd.usage_officer": "PLP: ALERTE <PIN> <PLP ou zone>,<autre code> <message> crée une "
    "alerte. STATUT <réf> donne le suivi.",
    "sms.cmd.pin_missing": "Code PIN manquant.",
    "sms.cmd.pin_wrong": "Code PIN incorrect. Essais restants avant blocage: {left}.",
    "sms.cmd.pin_locked": "Trop de codes PIN incorrects. Ce numéro est bloqué jusqu'à {until}.",
    "sms.pin_guessed": "PLP Alert: {count} codes PIN faux ont été donnés pour vous (dernier depuis "
    "{number}). Votre PIN est bloqué jusqu'à {until}. Si ce n'était pas vous, "
    "prévenez votre coordinateur.",
    "sms.cmd.no_target": "Cible manquante. Format: ALERTE <PIN> <PLP ou zone> <message>.",
    "sms.cmd.unknown_target": "Cible {code} inconnue: aucun PLP ni zone n'a ce code. Rien n'a été "
    "envoyé.",
    "sms.cmd.outside_zone": "{code} n'est pas dans votre zone {zone}. Rien n'a été envoyé.",
    "sms.cmd.empty_message": "Alerte sans texte. Rien n'a été envoyé.",
    "sms.cmd.text_too_long": "Message trop long: {max} caractères au plus. Rien n'a été envoyé.",
    "sms.cmd.alert_refused": "Alerte refusée. Rien n'a été envoyé. En cas d'urgence, appelez le "
    "101.",
    "sms.cmd.raised": "Alerte réf {ref} créée pour {plps} ({members} membres). Le coordinateur "
    "est prévenu et doit la diffuser. Vous recevrez un SMS dès qu'elle part. "
    "Suivi: STATUT {ref}.",
    "sms.cmd.raised_released": "Alerte réf {ref} diffusée aux {members} membres de {plps}. Suivi: "
    "STATUT {ref}.",
    "sms.cmd.released": "Alerte réf {ref} diffusée à {members} membres. Suivi: STATUT {ref}.",
    "sms.cmd.rejected": "Alerte réf {ref} refusée. Elle ne sera pas diffusée.",
    "sms.cmd.already_released": "Alerte réf {ref} déjà diffusée par {name}.",
    "sms.cmd.already_rejected": "Alerte réf {ref} déjà refusée par {name}.",
    "sms.cmd.automatic": "le système",
    "sms.cmd.alert_over": "L'alerte réf {ref} est terminée: plus rien à faire.",
    "sms.cmd.unknown_ref": "Aucune alerte n'a la référence {ref}. Pour confirmer la dernière "
    "alerte, répondez 1.",
    "sms.cmd.ref_missing": "Référence manquante. Exemple: {word} K7RM.",
    "sms.cmd.not_decider": "Seul un coordinateur du PLP peut diffuser ou refuser l'alerte réf "
    "{ref}.",
    "sms.cmd.confirmed": "Merci. Votre confirmation de l'alerte réf {ref} est enregistrée.",
    "sms.cmd.already_confirmed": "Votre confirmation de l'alerte réf {ref} était déjà "
    "enregistrée. Merci.",
    "sms.cmd.nothing_running": "Aucune alerte en cours à confirmer.",
    "sms.cmd.not_addressed": "L'alerte réf {ref} ne vous a pas été envoyée.",
    "sms.cmd.not_sent_yet": "L'alerte réf {ref} n'est pas encore diffusée.",
    "sms.cmd.awaiting_release": "L'alerte réf {ref} attend votre décision: OUI {ref} pour la "
    "diffuser, NON {ref} pour la refuser.",
    "sms.cmd.status": "Réf {ref}, {state}: {confirmed} confirmés, {reached} joints, {pending} en "
    "cours, {unreachable} injoignables, sur {members} membres.",
    "sms.cmd.state.awaiting_release": "attend sa diffusion",
    "sms.cmd.state.released": "diffusée",
    "sms.cmd.state.delivering": "en diffusion",
    "sms.cmd.state.rejected": "refusée",
    "sms.cmd.state.closed": "terminée",
    "sms.cmd.opted_out": "Vous ne recevrez plus de SMS du PLP. Les appels continuent. START pour "
    "les réactiver.",
    "sms.cmd.opted_in": "Vous recevez à nouveau les SMS du PLP. STOP pour ne plus les recevoir.",
    "sms.cmd.flood": "Trop de messages: vos SMS sont ignorés pendant 1 minute.",
    "sms.cmd.apology": "Problème technique: votre message n'a pas été traité. Réessayez dans 1 "
    "minute. En cas d'urgence, appelez le 101.",
}
