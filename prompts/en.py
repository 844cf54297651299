"""English: every word the system says or texts in English."""

TEXTS = {
    "name.plp": "PLP {plp}",
    "sms.alert": "{exercise}PLP {plp}, police message: {message} "
                 "Reply 1 to confirm. Ref {ref}",
    "sms.exercise_prefix": "EXERCISE - ",
    "email.subject": "{exercise}Police message for {plp} – ref. {ref}",
    "email.exercise_prefix": "[EXERCISE] ",
    "email.exercise_notice": "EXERCISE – This message is part of an exercise. "
                             "It is not a real alert.",
    "email.intro": "The police have sent the following message to the members of {plp}:",
    "email.source": "Source: police ({zone})",
    "email.reference": "Reference: {ref}",
    "email.confirm_intro": "Please confirm that you have received this message. "
                           "One click is enough:",
    "email.confirm_button": "I confirm receipt",
    "email.link_fallback": "If the button does not work, copy this address into your browser:",
    "email.footer": "You are receiving this e-mail as a member of a local prevention "
                    "partnership ({plp}). Please do not reply to it. In an emergency, "
                    "call 101 (police) or 112.",
}
