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
}
