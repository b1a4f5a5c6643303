package web

import (
	"fmt"
	"net/http"
	"strings"
)

// The site speaks English and Russian. The language is the one the person
// chose with the switch (a cookie), else the first of theirs the browser
// names (Accept-Language) that we speak, else English. It is also the
// locale of the mail auth sends on registration.

const langCookie = "lang"

var languages = []string{"en", "ru"}

// language picks the page's language for r.
func language(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && messages[c.Value] != nil {
		return c.Value
	}
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(q) == "q=0" {
			continue
		}
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if messages[base] != nil {
			return base
		}
	}
	return "en"
}

// translate is the message key in lang, formatted with args; a missing key
// shows itself, so a test catches it.
func translate(lang, key string, args ...any) string {
	m, ok := messages[lang][key]
	if !ok {
		m, ok = messages["en"][key]
	}
	if !ok {
		return "[[missing " + key + "]]"
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// authFieldMessages are auth's field messages (English, from its
// problem+json) with their Russian wording; one auth adds later shows in
// English until it is added here.
var authFieldMessages = map[string]string{
	"is required":                    "обязательное поле",
	"must be at most 254 characters": "не длиннее 254 символов",
	"must be an email address such as name@example.com":                       "нужен адрес электронной почты, например name@example.com",
	"the part before @ must be at most 64 characters":                         "часть до @ должна быть не длиннее 64 символов",
	"must be at least 8 characters":                                           "не короче 8 символов",
	"must be at most 128 characters":                                          "не длиннее 128 символов",
	"is one of the most common passwords; choose one that is harder to guess": "это один из самых распространённых паролей; выберите пароль сложнее",
	"must not contain your email address or the part of it before the @":      "не должен содержать ваш адрес или его часть до @",
	"must be the 6 digits from the email":                                     "нужны 6 цифр из письма",
}

// fieldMessage is an API's field message in lang.
func fieldMessage(lang, msg string) string {
	if lang == "ru" {
		if ru, ok := authFieldMessages[msg]; ok {
			return ru
		}
	}
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

var messages = map[string]map[string]string{
	"en": {
		"site.name":        "Kinoteka",
		"site.description": "Kinoteka: a film catalogue with reviews and favourites.",
		"nav.label":        "Main",
		"nav.skip":         "Skip to content",
		"nav.catalogue":    "Catalogue",
		"nav.favourites":   "Favourites",
		"nav.account":      "Account",
		"nav.admin":        "Admin",
		"nav.signin":       "Sign in",
		"nav.signup":       "Sign up",
		"nav.lang":         "Language",
		"nav.switch":       "Русский",
		"footer.text":      "Kinoteka — a film catalogue. Ratings are from IMDb and from our users.",

		"button.search":      "Search",
		"button.signup":      "Sign up",
		"button.verify":      "Verify",
		"button.resend":      "Send a new code",
		"button.signin":      "Sign in",
		"button.signout":     "Sign out",
		"button.signout_all": "Sign out everywhere",
		"button.forgot":      "Send a reset code",
		"button.reset":       "Set the new password",
		"button.fav_add":     "Add to favourites",
		"button.fav_remove":  "Remove from favourites",
		"button.review_post": "Post review",
		"button.review_save": "Save review",
		"button.review_del":  "Delete my review",
		"button.film_add":    "Add film",
		"button.film_save":   "Save film",
		"button.film_delete": "Delete film",
		"button.genre_add":   "Add genre",

		"catalogue.title":     "Catalogue",
		"catalogue.h1":        "Films",
		"catalogue.search":    "Search by title",
		"catalogue.filters":   "Filters",
		"catalogue.genre":     "Genre",
		"catalogue.anygenre":  "Any genre",
		"catalogue.year_from": "From year",
		"catalogue.year_to":   "To year",
		"catalogue.sort":      "Sort by",
		"sort.id":             "Catalogue order",
		"sort.title":          "Title",
		"sort.-year":          "Year, newest first",
		"sort.year":           "Year, oldest first",
		"sort.-rating":        "Our users' rating",
		"sort.-reviews":       "Most reviewed",
		"catalogue.results":   "Results",
		"catalogue.none":      "No film matches. Try fewer words or another filter.",
		"catalogue.imdb":      "IMDb %.1f",
		"pages.label":         "Pages",
		"pages.next":          "Next page",
		"pages.first":         "First page",

		"film.year":          "Year",
		"film.genre":         "Genre",
		"film.director":      "Director",
		"film.runtime":       "Runtime",
		"film.runtime_min":   "%d min",
		"film.mpaa":          "MPAA rating",
		"film.imdb":          "IMDb rating",
		"film.ours":          "Our users' rating",
		"film.ours_value":    "%.1f / 10 from %d reviews",
		"film.ours_none":     "No reviews yet",
		"film.unknown":       "unknown",
		"film.facts":         "About the film",
		"film.your_review":   "Your review",
		"film.rating":        "Rating from 1 to 10",
		"film.text":          "Review (optional)",
		"film.reviews":       "Reviews",
		"film.no_reviews":    "Nobody has reviewed this film yet.",
		"film.review_by_you": "Your review",
		"film.review_by":     "A viewer's review",
		"film.rated":         "%d / 10",
		"film.signin_hint":   "to add this film to your favourites or review it.",
		"film.edit":          "Edit this film",
		"film.in_favourites": "This film is in your favourites.",
		"reviews.more":       "More reviews",

		"signup.title":        "Sign up",
		"signup.intro":        "Create an account with your email address. We will send a 6-digit code to it.",
		"signup.have":         "Already have an account?",
		"field.email":         "Email address",
		"field.password":      "Password",
		"field.password_hint": "At least 8 characters; not one of the most common passwords.",
		"field.new_password":  "New password",
		"field.code":          "6-digit code",

		"verify.title":      "Enter the code",
		"verify.intro":      "We sent a 6-digit code to %s. It is valid for 10 minutes.",
		"verify.inbox":      "Open the mail inbox",
		"verify.inbox_note": "This is a local installation: mail is caught, not delivered.",
		"verify.resend_h":   "No code?",
		"verify.wait":       "You can ask for a new code in %d seconds.",
		"verify.wait_now":   "Please wait %d seconds before asking for another code.",

		"signin.title":  "Sign in",
		"signin.forgot": "Forgot your password?",
		"signin.new":    "New here?",

		"forgot.title": "Forgot your password",
		"forgot.intro": "Enter your email address and we will send you a code to set a new password.",
		"reset.title":  "Set a new password",
		"reset.intro":  "Enter the code we sent to your email address and choose a new password.",

		"favourites.title": "Your favourites",
		"favourites.none":  "No favourites yet. Open a film and press “Add to favourites”.",

		"account.title":    "Your account",
		"account.email":    "Email address",
		"account.roles":    "Roles",
		"account.since":    "Member since",
		"account.sessions": "Sessions",
		"account.all_note": "Signs you out on every device and browser, including this one.",

		"admin.title":       "Admin",
		"admin.add_film":    "Add a film",
		"admin.add_genre":   "Add a genre",
		"admin.edit_hint":   "To edit or delete a film, open its page and choose “Edit this film”.",
		"admin.edit_title":  "Edit “%s”",
		"admin.delete_h":    "Delete the film",
		"admin.delete_note": "Deleting removes the film with its reviews and favourites. It cannot be undone.",
		"field.title":       "Title",
		"field.year":        "Year",
		"field.genre":       "Genre",
		"field.no_genre":    "No genre",
		"field.director":    "Director",
		"field.runtime":     "Runtime in minutes",
		"field.imdb":        "IMDb rating (1–10)",
		"field.release":     "Release date",
		"field.mpaa":        "MPAA rating",
		"field.genre_name":  "Genre name",

		"flash.signed_in":      "You are signed in.",
		"flash.welcome":        "Your address is confirmed and you are signed in. Welcome!",
		"flash.signed_out":     "You are signed out.",
		"flash.signed_out_all": "You are signed out on every device.",
		"flash.code_sent":      "A new code is on its way. It replaces the previous one.",
		"flash.reset_sent":     "If the address has an account, a reset code is on its way to it.",
		"flash.password_reset": "Your password is changed. Sign in with the new one.",
		"flash.fav_added":      "Added to your favourites.",
		"flash.fav_removed":    "Removed from your favourites.",
		"flash.review_saved":   "Your review is saved.",
		"flash.review_deleted": "Your review is deleted.",
		"flash.film_added":     "The film is added.",
		"flash.film_saved":     "The film is saved.",
		"flash.film_deleted":   "The film is deleted.",
		"flash.genre_added":    "The genre is added.",
		"flash.signin_needed":  "Please sign in first.",
		"flash.not_verified":   "Your address is not confirmed yet. Enter the code we sent, or ask for a new one.",

		"error.form":         "Please correct the marked fields.",
		"error.credentials":  "The email address or password is wrong.",
		"error.code":         "The code is wrong, already used, or replaced by a newer one.",
		"error.code_expired": "The code has expired. Ask for a new one.",
		"error.code_burned":  "Too many wrong tries used up this code. Ask for a new one.",
		"error.exists":       "That already exists.",
		"error.rating":       "Choose a whole number from 1 to 10.",
		"error.year":         "Enter a year such as 1999.",
		"error.number":       "Enter a number.",
		"error.generic":      "That did not work: %s",
		"error.title":        "Something went wrong",
		"error.404.title":    "Page not found",
		"error.404.text":     "There is no page at this address. It may have moved, or the film may have been removed.",
		"error.403.title":    "Not allowed",
		"error.403.text":     "This page is for administrators only.",
		"error.429.title":    "Too many attempts",
		"error.429.text":     "You have tried this too often. Please try again in %d seconds.",
		"error.503.title":    "Temporarily unavailable",
		"error.503.auth":     "Sign-in and accounts are unavailable right now. The catalogue may still work. Please try again in a minute.",
		"error.503.films":    "The film catalogue is unavailable right now. Please try again in a minute.",
		"error.500.title":    "Something went wrong",
		"error.500.text":     "An error on our side stopped this page. Please try again; if it keeps happening, tell us the reference %s.",
		"error.csrf.title":   "Request refused",
		"error.csrf.text":    "This form was sent from another site, so it was refused. Go back to Kinoteka and try again there.",
		"error.home":         "Go to the catalogue",
	},
	"ru": {
		"site.name":        "Кинотека",
		"site.description": "Кинотека: каталог фильмов с отзывами и избранным.",
		"nav.label":        "Основная навигация",
		"nav.skip":         "Перейти к содержанию",
		"nav.catalogue":    "Каталог",
		"nav.favourites":   "Избранное",
		"nav.account":      "Профиль",
		"nav.admin":        "Администрирование",
		"nav.signin":       "Войти",
		"nav.signup":       "Регистрация",
		"nav.lang":         "Язык",
		"nav.switch":       "English",
		"footer.text":      "Кинотека — каталог фильмов. Оценки — от IMDb и от наших зрителей.",

		"button.search":      "Найти",
		"button.signup":      "Зарегистрироваться",
		"button.verify":      "Подтвердить",
		"button.resend":      "Прислать новый код",
		"button.signin":      "Войти",
		"button.signout":     "Выйти",
		"button.signout_all": "Выйти на всех устройствах",
		"button.forgot":      "Прислать код для сброса",
		"button.reset":       "Сохранить новый пароль",
		"button.fav_add":     "Добавить в избранное",
		"button.fav_remove":  "Убрать из избранного",
		"button.review_post": "Опубликовать отзыв",
		"button.review_save": "Сохранить отзыв",
		"button.review_del":  "Удалить мой отзыв",
		"button.film_add":    "Добавить фильм",
		"button.film_save":   "Сохранить фильм",
		"button.film_delete": "Удалить фильм",
		"button.genre_add":   "Добавить жанр",

		"catalogue.title":     "Каталог",
		"catalogue.h1":        "Фильмы",
		"catalogue.search":    "Поиск по названию",
		"catalogue.filters":   "Фильтры",
		"catalogue.genre":     "Жанр",
		"catalogue.anygenre":  "Любой жанр",
		"catalogue.year_from": "С года",
		"catalogue.year_to":   "По год",
		"catalogue.sort":      "Сортировка",
		"sort.id":             "Порядок каталога",
		"sort.title":          "По названию",
		"sort.-year":          "Сначала новые",
		"sort.year":           "Сначала старые",
		"sort.-rating":        "По оценке зрителей",
		"sort.-reviews":       "Больше всего отзывов",
		"catalogue.results":   "Результаты",
		"catalogue.none":      "Ничего не нашлось. Попробуйте меньше слов или другой фильтр.",
		"catalogue.imdb":      "IMDb %.1f",
		"pages.label":         "Страницы",
		"pages.next":          "Следующая страница",
		"pages.first":         "Первая страница",

		"film.year":          "Год",
		"film.genre":         "Жанр",
		"film.director":      "Режиссёр",
		"film.runtime":       "Длительность",
		"film.runtime_min":   "%d мин",
		"film.mpaa":          "Рейтинг MPAA",
		"film.imdb":          "Оценка IMDb",
		"film.ours":          "Оценка наших зрителей",
		"film.ours_value":    "%.1f из 10, отзывов: %d",
		"film.ours_none":     "Отзывов пока нет",
		"film.unknown":       "неизвестно",
		"film.facts":         "О фильме",
		"film.your_review":   "Ваш отзыв",
		"film.rating":        "Оценка от 1 до 10",
		"film.text":          "Текст отзыва (необязательно)",
		"film.reviews":       "Отзывы",
		"film.no_reviews":    "Отзывов к этому фильму пока нет.",
		"film.review_by_you": "Ваш отзыв",
		"film.review_by":     "Отзыв зрителя",
		"film.rated":         "%d из 10",
		"film.signin_hint":   "чтобы добавить фильм в избранное или оставить отзыв.",
		"film.edit":          "Изменить фильм",
		"film.in_favourites": "Этот фильм в вашем избранном.",
		"reviews.more":       "Ещё отзывы",

		"signup.title":        "Регистрация",
		"signup.intro":        "Создайте учётную запись по адресу электронной почты. Мы пришлём на него код из 6 цифр.",
		"signup.have":         "Уже есть учётная запись?",
		"field.email":         "Адрес электронной почты",
		"field.password":      "Пароль",
		"field.password_hint": "Не короче 8 символов и не из самых распространённых.",
		"field.new_password":  "Новый пароль",
		"field.code":          "Код из 6 цифр",

		"verify.title":      "Введите код",
		"verify.intro":      "Мы отправили код из 6 цифр на %s. Он действует 10 минут.",
		"verify.inbox":      "Открыть почтовый ящик",
		"verify.inbox_note": "Это локальная установка: письма не уходят наружу, а собираются здесь.",
		"verify.resend_h":   "Не пришёл код?",
		"verify.wait":       "Новый код можно запросить через %d с.",
		"verify.wait_now":   "Подождите %d с, прежде чем запрашивать новый код.",

		"signin.title":  "Вход",
		"signin.forgot": "Забыли пароль?",
		"signin.new":    "Впервые здесь?",

		"forgot.title": "Восстановление пароля",
		"forgot.intro": "Введите адрес электронной почты, и мы пришлём код для нового пароля.",
		"reset.title":  "Новый пароль",
		"reset.intro":  "Введите код из письма и новый пароль.",

		"favourites.title": "Избранное",
		"favourites.none":  "В избранном пока пусто. Откройте фильм и нажмите «Добавить в избранное».",

		"account.title":    "Ваш профиль",
		"account.email":    "Адрес электронной почты",
		"account.roles":    "Роли",
		"account.since":    "С нами с",
		"account.sessions": "Сеансы",
		"account.all_note": "Завершает сеансы на всех устройствах и в браузерах, включая этот.",

		"admin.title":       "Администрирование",
		"admin.add_film":    "Добавить фильм",
		"admin.add_genre":   "Добавить жанр",
		"admin.edit_hint":   "Чтобы изменить или удалить фильм, откройте его страницу и выберите «Изменить фильм».",
		"admin.edit_title":  "Изменить «%s»",
		"admin.delete_h":    "Удаление фильма",
		"admin.delete_note": "Фильм удаляется вместе с отзывами и избранным. Отменить это нельзя.",
		"field.title":       "Название",
		"field.year":        "Год",
		"field.genre":       "Жанр",
		"field.no_genre":    "Без жанра",
		"field.director":    "Режиссёр",
		"field.runtime":     "Длительность в минутах",
		"field.imdb":        "Оценка IMDb (1–10)",
		"field.release":     "Дата выхода",
		"field.mpaa":        "Рейтинг MPAA",
		"field.genre_name":  "Название жанра",

		"flash.signed_in":      "Вы вошли.",
		"flash.welcome":        "Адрес подтверждён, вы вошли. Добро пожаловать!",
		"flash.signed_out":     "Вы вышли.",
		"flash.signed_out_all": "Вы вышли на всех устройствах.",
		"flash.code_sent":      "Новый код отправлен. Он заменяет предыдущий.",
		"flash.reset_sent":     "Если у адреса есть учётная запись, код для сброса уже отправлен.",
		"flash.password_reset": "Пароль изменён. Войдите с новым паролем.",
		"flash.fav_added":      "Добавлено в избранное.",
		"flash.fav_removed":    "Убрано из избранного.",
		"flash.review_saved":   "Отзыв сохранён.",
		"flash.review_deleted": "Отзыв удалён.",
		"flash.film_added":     "Фильм добавлен.",
		"flash.film_saved":     "Фильм сохранён.",
		"flash.film_deleted":   "Фильм удалён.",
		"flash.genre_added":    "Жанр добавлен.",
		"flash.signin_needed":  "Сначала войдите.",
		"flash.not_verified":   "Адрес ещё не подтверждён. Введите код из письма или запросите новый.",

		"error.form":         "Исправьте отмеченные поля.",
		"error.credentials":  "Неверный адрес или пароль.",
		"error.code":         "Код неверный, уже использован или заменён новым.",
		"error.code_expired": "Срок действия кода истёк. Запросите новый.",
		"error.code_burned":  "Слишком много неверных попыток, код больше не действует. Запросите новый.",
		"error.exists":       "Такое уже есть.",
		"error.rating":       "Выберите целое число от 1 до 10.",
		"error.year":         "Введите год, например 1999.",
		"error.number":       "Введите число.",
		"error.generic":      "Не получилось: %s",
		"error.title":        "Что-то пошло не так",
		"error.404.title":    "Страница не найдена",
		"error.404.text":     "По этому адресу ничего нет. Возможно, страница переехала или фильм удалён.",
		"error.403.title":    "Нет доступа",
		"error.403.text":     "Эта страница только для администраторов.",
		"error.429.title":    "Слишком много попыток",
		"error.429.text":     "Вы пробовали слишком часто. Попробуйте снова через %d с.",
		"error.503.title":    "Временно недоступно",
		"error.503.auth":     "Вход и учётные записи сейчас недоступны. Каталог, возможно, работает. Попробуйте через минуту.",
		"error.503.films":    "Каталог фильмов сейчас недоступен. Попробуйте через минуту.",
		"error.500.title":    "Что-то пошло не так",
		"error.500.text":     "Из-за ошибки на нашей стороне страница не открылась. Попробуйте ещё раз; если не поможет, сообщите нам номер %s.",
		"error.csrf.title":   "Запрос отклонён",
		"error.csrf.text":    "Эта форма отправлена с другого сайта, поэтому отклонена. Вернитесь в Кинотеку и попробуйте там.",
		"error.home":         "В каталог",
	},
}
