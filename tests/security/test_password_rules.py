"""The new-password rules: what is refused, and that the reason given is the true one."""

from portal.security.passwords import password_problems


def test_a_word_of_the_address_in_a_strong_password_is_accepted():
    # "zastepca" is a Polish word (deputy) as well as this person's mailbox name.
    assert password_problems("mój zastepca lubi zielone pomidory", None, "zastepca@firma.pl") == {}


def test_a_guessable_password_built_on_the_address_says_it_resembles_the_address():
    problems = password_problems("Zastepca2026!", None, "zastepca@firma.pl")
    assert problems["password"].startswith("Hasło przypomina Twój adres e-mail.")
    assert "zawierać" not in problems["password"]
    dotted = password_problems("kowalska1987!", None, "anna.kowalska@firma.pl")
    assert dotted["password"].startswith("Hasło przypomina Twój adres e-mail.")


def test_the_whole_address_is_still_refused_as_contained():
    problems = password_problems("to jest zastepca@firma.pl i tyle", None, "zastepca@firma.pl")
    assert problems == {"password": "Hasło nie może zawierać Twojego adresu e-mail."}


def test_an_unrelated_weak_password_gets_its_own_reason():
    problems = password_problems("password1234", None, "zastepca@firma.pl")
    assert "adres e-mail" not in problems["password"]
