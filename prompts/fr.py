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
}
