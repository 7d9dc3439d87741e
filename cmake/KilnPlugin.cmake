set(KILN_EMBED_TEXT_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/EmbedText.cmake")

# kiln_add_plugin(NAME SOURCES...): build a stage plugin as a MODULE named NAME.so that exports only
# kiln_plugin_entry. Used in-tree and, through find_package(kiln), by out-of-tree plugins.
function(kiln_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
  if(TARGET kiln::sdk)
    target_link_libraries(${name} PRIVATE kiln::sdk)
  endif()
  if(DEFINED KILN_PLUGIN_DIR_REL AND DEFINED CMAKE_LIBRARY_OUTPUT_DIRECTORY AND NOT KILN_OUT_OF_TREE)
    set_target_properties(${name} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/${KILN_PLUGIN_DIR_REL}")
    install(TARGETS ${name} LIBRARY DESTINATION "${KILN_PLUGIN_DIR_REL}")
  endif()
endfunction()

# kiln_embed_text(TARGET SYMBOL FILE): compile FILE (e.g. a stage's options.schema.json) into
# TARGET as `const char SYMBOL[]`, regenerated whenever the file changes.
function(kiln_embed_text target symbol file)
  get_filename_component(abs "${file}" ABSOLUTE)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${target}_${symbol}.c")
  add_custom_command(OUTPUT "${out}"
    COMMAND "${CMAKE_COMMAND}" -DINPUT=${abs} -DOUTPUT=${out} -DSYMBOL=${symbol}
            -P "${KILN_EMBED_TEXT_SCRIPT}"
    DEPENDS "${abs}" "${KILN_EMBED_TEXT_SCRIPT}"
    COMMENT "Embedding ${file}" VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
