a@{a}: a
