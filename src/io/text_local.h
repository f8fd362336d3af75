/* Private helpers shared by the text format parser and printer. */
#ifndef CREMA_IO_TEXT_LOCAL_H
#define CREMA_IO_TEXT_LOCAL_H

#include <locale.h>

/* Numbers are read and written with '.' as the radix whatever the
 * application's locale: the calling thread switches to the C locale for the
 * duration of a parse or print and back afterwards. */
typedef struct txt_numeric_locale {
  locale_t c_locale;
  locale_t previous;
} txt_numeric_locale;

txt_numeric_locale txt_enter_c_locale(void);
void txt_leave_c_locale(txt_numeric_locale saved);

#endif
